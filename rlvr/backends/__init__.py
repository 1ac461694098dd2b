"""Optional generation backends beside rollout's own `hf` loop (each detected at run time)."""
