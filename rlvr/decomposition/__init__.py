"""Where a gain came from: reasoning styles and the exact Shapley split into format, degeneration, selection and skill."""
