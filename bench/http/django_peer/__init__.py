"""Peer (c)/(d): a minimal Django project with SessionMiddleware + django.contrib.auth.

BENCH_DJANGO_SESSIONS=db    -> django.contrib.sessions.backends.db on SQLite  (peer c)
BENCH_DJANGO_SESSIONS=cache -> django.contrib.sessions.backends.cache on Redis via django-redis (peer d)
BENCH_DJANGO_DB=/path/to/db.sqlite3   users (and db sessions) live here
BENCH_REDIS_URL=redis://127.0.0.1:6379/9
"""
