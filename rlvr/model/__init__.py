"""A model as rlvr drives it: locating and checking it, the fast forward and its decode cache, the policy, rollouts, sampling."""
