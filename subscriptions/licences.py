import secrets

# No 0/O, 1/I/L, so a key read aloud or copied by hand cannot be misread.
LICENCE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"


def new_licence_key() -> str:
    groups = ("".join(secrets.choice(LICENCE_ALPHABET) for _ in range(5)) for _ in range(5))
    return "-".join(groups)
