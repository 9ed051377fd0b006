"""Ingest: fetch → extract → split → encode → store, one small component per step, wired in
`index.ingest.pipeline`."""
