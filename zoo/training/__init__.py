"""Training: run directories, checkpoints, resume and the fit loop shared by every task."""
