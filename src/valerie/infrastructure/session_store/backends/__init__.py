"""The storage backends: each keeps encoded sessions (bytes) and nothing else."""
