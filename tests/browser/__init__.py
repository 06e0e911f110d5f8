"""Browser tests: Chromium driven by Playwright against servers on loopback."""
