"""The door: recorder detection, mount watching, recorder profiles, simulated recorders."""
