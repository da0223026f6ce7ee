"""Generated from proto/bosun/v1 by scripts/gen-clients. Do not edit."""
