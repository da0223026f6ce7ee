// Runs a real `bosun serve` for the tests: on 127.0.0.1:0 with a fresh data
// dir, its address read from the JSON log line "bosun serving", ready once
// health says SERVING. The binary is $TEST_BOSUN_BIN, else target/debug/bosun of
// the repository (`cargo build` makes it).

import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";

import { connect } from "../src/index.js";
import { HealthCheckResponse_ServingStatus } from "../src/gen/grpc/health/v1/health_pb.js";

const START_TIMEOUT_MS = 30_000;
// dist/test/bosun-server.js -> the repository root.
const REPO_ROOT = resolve(fileURLToPath(import.meta.url), "../../../../..");

function bosunBinary(): string {
  const path = process.env.TEST_BOSUN_BIN || join(REPO_ROOT, "target", "debug", "bosun");
  if (!existsSync(path)) {
    throw new Error(`no bosun binary at ${path}: run \`cargo build\` at the repository root, or set TEST_BOSUN_BIN`);
  }
  return path;
}

export interface ServerOptions {
  /** The TOML configuration file's content. */
  config?: string;
  /** Extra environment variables, e.g. BOSUN_EVENTS__RETENTION. */
  env?: Record<string, string>;
}

/** One bosun process (and, after restart(), its successor on the same address and data dir). */
export class BosunServer {
  address = "";
  readonly log: string[] = [];
  private readonly workdir = mkdtempSync(join(tmpdir(), "bosun-ts-"));
  private readonly configPath?: string;
  private process?: ChildProcess;

  private constructor(private readonly options: ServerOptions) {
    if (options.config) {
      this.configPath = join(this.workdir, "bosun.toml");
      writeFileSync(this.configPath, options.config);
    }
  }

  static async start(options: ServerOptions = {}): Promise<BosunServer> {
    const server = new BosunServer(options);
    await server.launch("127.0.0.1:0");
    return server;
  }

  /** SIGTERM, then wait until bosun exited. */
  async stop(): Promise<void> {
    const child = this.process;
    if (!child) return;
    this.process = undefined;
    if (child.exitCode === null && child.signalCode === null) {
      const exited = once(child, "exit");
      child.kill("SIGTERM");
      await exited;
    }
  }

  /** Stops bosun and starts it again on the same address and data dir. */
  async restart(): Promise<void> {
    await this.stop();
    await this.launch(this.address);
  }

  /** Stops bosun and deletes its data dir. */
  async dispose(): Promise<void> {
    await this.stop();
    rmSync(this.workdir, { recursive: true, force: true });
  }

  private async launch(address: string): Promise<void> {
    const args = ["serve", "--data-dir", join(this.workdir, "data"), "--grpc-addr", address, "--http-addr", "127.0.0.1:0", "--log-format", "json"];
    if (this.configPath) args.push("--config", this.configPath);
    const child = spawn(bosunBinary(), args, {
      env: { ...process.env, RUST_LOG: "info", ...this.options.env },
      stdio: ["ignore", "ignore", "pipe"],
    });
    this.process = child;
    const bound = new Promise<string>((resolveBound, reject) => {
      const lines = createInterface({ input: child.stderr! });
      lines.on("line", (line) => {
        this.log.push(line);
        try {
          const fields = JSON.parse(line).fields ?? {};
          if (fields.message === "bosun serving") resolveBound(fields.grpc_addr);
        } catch {
          // Not a JSON log line.
        }
      });
      child.on("exit", () => reject(new Error(`bosun exited before serving; log:\n${this.log.join("\n")}`)));
      setTimeout(() => reject(new Error("bosun did not log its address")), START_TIMEOUT_MS).unref();
    });
    this.address = await bound;
    await this.waitServing();
  }

  /** Polls health until SERVING (the listener is bound, so calls queue until it serves). */
  private async waitServing(): Promise<void> {
    const client = connect(this.address);
    const deadline = Date.now() + START_TIMEOUT_MS;
    try {
      for (;;) {
        try {
          const health = await client.health.check({}, { timeoutMs: 1000 });
          if (health.status === HealthCheckResponse_ServingStatus.SERVING) return;
        } catch (error) {
          if (Date.now() > deadline) throw error;
        }
        await sleep(10);
      }
    } finally {
      client.close();
    }
  }
}
