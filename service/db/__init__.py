"""Database engine, sessions, migrations and the embedded development server."""
