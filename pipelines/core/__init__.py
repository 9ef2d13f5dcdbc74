"""The bottom layer: events, configs and presets, devices, the run store, the recorded runner, DDP helpers. Imports nothing else of ours."""
