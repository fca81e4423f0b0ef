"""Pure domain types and validation: no I/O, no kernel, no database."""
