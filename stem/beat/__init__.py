"""``stem beat``: the actor that fires schedule entries, and the store it keeps them in.

Above the app: :mod:`stem.beat.service` runs the trio loop that enqueues each due tick
through the app (``stem beat``, or ``serve_beat`` in a nursery), and
:mod:`stem.beat.store` keeps entries, operator switches and run records in Redis through
the broker's ``ScheduleStore`` role (``broker.schedule_store()``; the Redis commands
and keys live in the broker, not here). What an entry is and when it is due is the pure
model in :mod:`stem.schedule`.
"""
