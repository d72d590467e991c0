"""Two services that share only task names: a web service that enqueues, a worker that runs.

See README.md beside this file.
"""
