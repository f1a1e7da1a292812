"""Device-side code: torch-free (numpy, OpenCV and the artifact's runtime package only)."""
