"""Run directories: writing them (atomic files, resolved config), reading them back, the training-rows snapshot."""
