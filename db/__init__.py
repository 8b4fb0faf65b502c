"""Everything that talks to PostgreSQL: schema, named SQL, the repository and the embedded cluster.

Nothing here knows about images.
"""
