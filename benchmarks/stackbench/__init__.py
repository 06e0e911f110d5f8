"""The stack benchmark harness: services it owns, the apps, load, counts and the report.

Run it through ``benchmarks/run.py``; nothing here is imported by flaskstack.
"""
