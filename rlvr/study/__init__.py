"""The organism study end to end: its design, `rlvr demo`, and the claims that extend it (C8, C9)."""
