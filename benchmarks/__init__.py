"""Cost and quality benchmarks of lavis-latent; each writes its tables, json and plots under benchmarks/results/."""
