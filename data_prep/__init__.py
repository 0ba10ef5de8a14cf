"""Turns videos on disk into arrays and datasets: decoding (`video`), and later flow, splits and builders."""
