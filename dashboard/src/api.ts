// The browser's connection to bosun: gRPC-Web to the page's own origin (bosun
// serves both), with the bearer token on every call. The token is asked once
// and kept in sessionStorage (gone when the tab closes).

import { type Client, Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";

import { Events } from "../../clients/typescript/src/gen/bosun/v1/events_pb.js";
import { Lessons } from "../../clients/typescript/src/gen/bosun/v1/lessons_pb.js";
import { Sessions } from "../../clients/typescript/src/gen/bosun/v1/sessions_pb.js";
import { Tasks } from "../../clients/typescript/src/gen/bosun/v1/tasks_pb.js";

const TOKEN_KEY = "bosun.token";

export interface Api {
  events: Client<typeof Events>;
  sessions: Client<typeof Sessions>;
  tasks: Client<typeof Tasks>;
  lessons: Client<typeof Lessons>;
}

export function storedToken(): string {
  return sessionStorage.getItem(TOKEN_KEY) ?? "";
}

export function storeToken(token: string): void {
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
}

/** Clients for the services the dashboard reads, calling with `token` (none when empty). */
export function connect(token: string): Api {
  const bearer: Interceptor = (next) => (request) => {
    if (token) request.header.set("authorization", `Bearer ${token}`);
    return next(request);
  };
  // The API sits beside the page: at the root, or under the prefix a
  // reverse proxy serves the dashboard at.
  const baseUrl = location.origin + location.pathname.replace(/\/[^/]*$/, "");
  const transport = createGrpcWebTransport({ baseUrl, interceptors: [bearer] });
  return {
    events: createClient(Events, transport),
    sessions: createClient(Sessions, transport),
    tasks: createClient(Tasks, transport),
    lessons: createClient(Lessons, transport),
  };
}

/** True when bosun refused the call for its token (missing, wrong, or a role that may not read). */
export function isRefusal(error: unknown): boolean {
  const code = ConnectError.from(error).code;
  return code === Code.Unauthenticated || code === Code.PermissionDenied;
}

/** One line for a person: the status code and bosun's message. */
export function describe(error: unknown): string {
  const err = ConnectError.from(error);
  return `${Code[err.code] ?? err.code}: ${err.rawMessage}`;
}

/** Every page of a List call: `page(token)` returns the items and the next page token. */
export async function allPages<T>(page: (pageToken: string) => Promise<[T[], string]>, limit = 50): Promise<T[]> {
  const items: T[] = [];
  let pageToken = "";
  for (let n = 0; n < limit; n++) {
    const [batch, next] = await page(pageToken);
    items.push(...batch);
    if (!next) break;
    pageToken = next;
  }
  return items;
}
