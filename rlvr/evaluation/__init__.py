"""Measuring a model: evaluation on suites, pass@k, per-group breakdowns, diagnostics, the paper's protocol, anchor selection."""
