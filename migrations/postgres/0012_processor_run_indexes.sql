-- Before every pass the scheduler asks when the processor's newest pass
-- started and whether one is still running (processors::store::latest).
-- Passes are kept, one per cadence, so without these both questions read
-- every pass the processor ever ran.
CREATE INDEX processor_runs_by_start ON processor_runs (processor, start_time);
CREATE INDEX processor_runs_running ON processor_runs (processor, id) WHERE state = 'running';
