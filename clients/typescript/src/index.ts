// A TypeScript client for bosun, the control plane for fleets of AI coding
// agents: connect(address, { token }) gives a client for every service, with
// the generated bosun.v1 messages and services re-exported here.

export { BosunClient, connect, type ConnectOptions, DEFAULT_QUIET_TIMEOUT_MS, type Logger } from "./client.js";
export { CursorCompactedError, ERROR_DOMAIN, errorInfo, errorReason } from "./errors.js";
export { Watch, type WatchOptions } from "./watch.js";

export * from "./gen/bosun/v1/common_pb.js";
export * from "./gen/bosun/v1/events_pb.js";
export * from "./gen/bosun/v1/lessons_pb.js";
export * from "./gen/bosun/v1/processors_pb.js";
export * from "./gen/bosun/v1/reconciler_pb.js";
export * from "./gen/bosun/v1/sessions_pb.js";
export * from "./gen/bosun/v1/tasks_pb.js";
