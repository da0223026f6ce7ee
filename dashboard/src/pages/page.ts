// What every page is: built into a root element, told of each change.

import type { Event } from "../../../clients/typescript/src/gen/bosun/v1/events_pb.js";
import type { Api } from "../api.js";
import type { Store } from "../store.js";

export interface Context {
  api: Api;
  store: Store;
}

export interface Page {
  /** The title of the page (the document's title and the main heading). */
  title: string;
  /** After each change: the events just applied ([] for a fresh snapshot or the clock). */
  update(events: Event[]): void;
  dispose?(): void;
}
