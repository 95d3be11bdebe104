"""Coverage-guided fuzzing with atheris (``make fuzz``); see harness.py."""
