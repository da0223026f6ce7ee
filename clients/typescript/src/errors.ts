// bosun's errors: every refusal carries a google.rpc.ErrorInfo (domain
// "bosun") with a stable reason, in the grpc-status-details-bin trailer.

import { Code, ConnectError } from "@connectrpc/connect";

import { type ErrorInfo, ErrorInfoSchema } from "./gen/google/rpc/error_details_pb.js";

/** The google.rpc.ErrorInfo domain of bosun's errors. */
export const ERROR_DOMAIN = "bosun";

/** The ErrorInfo bosun attached to a failed call, or undefined (for example on a transport error). */
export function errorInfo(error: unknown): ErrorInfo | undefined {
  return ConnectError.from(error)
    .findDetails(ErrorInfoSchema)
    .find((info) => info.domain === ERROR_DOMAIN);
}

/** A failed call's stable reason (e.g. "LESSON_NOT_FOUND"), or "" when it carries no bosun ErrorInfo. */
export function errorReason(error: unknown): string {
  return errorInfo(error)?.reason ?? "";
}

/**
 * A watch cursor points into history that retention has deleted: the events
 * between `afterSeq` and `oldestSeq` are gone. Rebuild state from the
 * Get/List RPCs, then watch from Events.GetHead's headSeq. `cause` is the
 * ConnectError (OUT_OF_RANGE, reason CURSOR_COMPACTED).
 */
export class CursorCompactedError extends Error {
  override readonly name = "CursorCompactedError";

  constructor(
    readonly afterSeq: bigint,
    readonly oldestSeq: bigint,
    cause: ConnectError,
  ) {
    super(`watch cursor ${afterSeq} was compacted away; the oldest kept event is ${oldestSeq}`, { cause });
  }
}

/** `error` as a CursorCompactedError when it is one, else undefined. */
export function cursorCompacted(error: ConnectError, afterSeq: bigint): CursorCompactedError | undefined {
  const info = errorInfo(error);
  if (error.code !== Code.OutOfRange || info?.reason !== "CURSOR_COMPACTED") {
    return undefined;
  }
  let oldestSeq = 0n;
  try {
    oldestSeq = BigInt(info.metadata["oldest_seq"] ?? "0");
  } catch {
    // A malformed oldest_seq leaves 0: the error itself is what matters.
  }
  return new CursorCompactedError(afterSeq, oldestSeq, error);
}
