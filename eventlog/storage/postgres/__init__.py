"""The PostgreSQL backend (the ``postgres`` extra): KV interface, migrations, wake-up."""
