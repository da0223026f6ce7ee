// A real `bosun serve` for the browser tests: fresh data dir, both listeners
// on 127.0.0.1:0 (the addresses read from the JSON log line "bosun serving"),
// tokens from the TOML config. The binary is $TEST_BOSUN_BIN, else
// target/debug/bosun of the repository.

import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

import { type Client, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";

import { Lessons } from "../../clients/typescript/src/gen/bosun/v1/lessons_pb.js";
import { Sessions } from "../../clients/typescript/src/gen/bosun/v1/sessions_pb.js";
import { Tasks } from "../../clients/typescript/src/gen/bosun/v1/tasks_pb.js";

// .test-build/<file>.js -> the repository root.
export const REPO_ROOT = resolve(fileURLToPath(import.meta.url), "../../..");
const START_TIMEOUT_MS = 30_000;

export const ADMIN_TOKEN = "admin-token-for-the-dashboard-tests";
export const READ_TOKEN = "read-token-for-the-dashboard-tests";

const CONFIG = `
[auth]
tokens = [
  { name = "tests", role = "admin", token = "${ADMIN_TOKEN}" },
  { name = "dashboard", role = "read", token = "${READ_TOKEN}" },
]
`;

export interface Clients {
  sessions: Client<typeof Sessions>;
  tasks: Client<typeof Tasks>;
  lessons: Client<typeof Lessons>;
}

export class Bosun {
  grpcAddr = "127.0.0.1:0";
  httpAddr = "127.0.0.1:0";
  readonly log: string[] = [];
  private readonly workdir = mkdtempSync(join(tmpdir(), "bosun-dashboard-"));
  private process?: ChildProcess;

  static async start(): Promise<Bosun> {
    const bosun = new Bosun();
    writeFileSync(join(bosun.workdir, "bosun.toml"), CONFIG);
    await bosun.launch();
    return bosun;
  }

  get url(): string {
    return `http://${this.httpAddr}/`;
  }

  /** Clients over gRPC (HTTP/2) with the admin token. */
  clients(): Clients {
    const transport = createGrpcTransport({
      baseUrl: `http://${this.grpcAddr}`,
      interceptors: [
        (next) => (request) => {
          request.header.set("authorization", `Bearer ${ADMIN_TOKEN}`);
          return next(request);
        },
      ],
    });
    return { sessions: createClient(Sessions, transport), tasks: createClient(Tasks, transport), lessons: createClient(Lessons, transport) };
  }

  /** SIGTERM, then wait until bosun exited. */
  async stop(): Promise<void> {
    const child = this.process;
    this.process = undefined;
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = once(child, "exit");
      child.kill("SIGTERM");
      await exited;
    }
  }

  /** Stops and starts again on the same addresses and data dir. */
  async restart(): Promise<void> {
    await this.stop();
    await this.launch();
  }

  async dispose(): Promise<void> {
    await this.stop();
    rmSync(this.workdir, { recursive: true, force: true });
  }

  private async launch(): Promise<void> {
    const binary = process.env.TEST_BOSUN_BIN || join(REPO_ROOT, "target", "debug", "bosun");
    if (!existsSync(binary)) throw new Error(`no bosun binary at ${binary}: run \`cargo build\`, or set TEST_BOSUN_BIN`);
    const args = ["serve", "--config", join(this.workdir, "bosun.toml"), "--data-dir", join(this.workdir, "data")];
    args.push("--grpc-addr", this.grpcAddr, "--http-addr", this.httpAddr, "--log-format", "json");
    const child = spawn(binary, args, { env: { ...process.env, RUST_LOG: "info" }, stdio: ["ignore", "ignore", "pipe"] });
    this.process = child;
    const serving = new Promise<{ grpc: string; http: string }>((resolveServing, reject) => {
      const lines = createInterface({ input: child.stderr! });
      lines.on("line", (line) => {
        this.log.push(line);
        try {
          const fields = JSON.parse(line).fields ?? {};
          if (fields.message === "bosun serving") resolveServing({ grpc: fields.grpc_addr, http: fields.http_addr });
        } catch {
          // Not a JSON log line.
        }
      });
      child.on("exit", () => reject(new Error(`bosun exited before serving; log:\n${this.log.join("\n")}`)));
      setTimeout(() => reject(new Error("bosun did not log its addresses")), START_TIMEOUT_MS).unref();
    });
    const { grpc, http } = await serving;
    this.grpcAddr = grpc;
    this.httpAddr = http;
    await this.waitReady();
  }

  /** Polls /readyz (bosun answers SERVING) instead of sleeping. */
  private async waitReady(): Promise<void> {
    const deadline = Date.now() + START_TIMEOUT_MS;
    for (;;) {
      try {
        const response = await fetch(`http://${this.httpAddr}/readyz`);
        if (response.ok) return;
      } catch (error) {
        if (Date.now() > deadline) throw error;
      }
      if (Date.now() > deadline) throw new Error("bosun did not become ready");
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}
