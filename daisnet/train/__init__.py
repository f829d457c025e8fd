"""Training DAISnet: schedule (eq. 27), checkpoints with resume, the loop (CPU, GPU, DDP)."""
