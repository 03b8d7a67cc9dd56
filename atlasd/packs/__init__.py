"""Views as data: pack files, their checker, the append-time schema and the fold engine."""
