"""huihua for Django: a SESSION_ENGINE, a middleware for mini programs, and a small app.

    SESSION_ENGINE = "huihua.contrib.django.session"
    HUIHUA_STORE = "sqlite:///huihua.db"     # or redis://..., postgresql://...
    MIDDLEWARE: "huihua.contrib.django.middleware.SessionMiddleware" instead of Django's

Add "huihua.contrib.django" to INSTALLED_APPS for WeChat login, the JSON views and commands.
"""
