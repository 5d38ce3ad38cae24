"""Task modules imported by the benchmarked workers (one per library, plus the shared bodies)."""
