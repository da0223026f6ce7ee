//! bosun: a gRPC control plane for fleets of AI coding agents.
//!
//! One module per domain (`lessons`, `events`, ...), each with the same
//! inside: domain types and rules, a store (SQL only), a gRPC adapter
//! (validate -> call -> convert). Shared pieces: `storage` (SQLite, the single
//! writer), `error` (the one mapping to gRPC status), `auth`, `idempotency`,
//! `pagination`, `validate`, `config`, `server`. The webhook shim
//! (`webhooks`) and the operator console (`console`) are clients of the gRPC
//! API, never of the storage; so is the web dashboard (`dashboard`), whose
//! gRPC-Web calls enter the same stack.

#![forbid(unsafe_code)]

pub mod auth;
pub mod cli;
pub mod codec;
pub mod config;
pub mod console;
pub mod dashboard;
pub mod error;
pub mod events;
pub mod idempotency;
pub mod lessons;
pub mod pagination;
pub mod pass_metrics;
pub mod pb;
pub mod processors;
mod proto_enum;
pub mod reconciler;
pub mod repo_id;
pub mod server;
pub mod sessions;
mod slug;
pub mod storage;
pub mod tasks;
pub mod telemetry;
pub mod time;
pub mod validate;
pub mod webhooks;
