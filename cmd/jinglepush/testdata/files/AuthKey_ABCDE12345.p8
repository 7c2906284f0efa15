not a key: the config tests only need this file to exist
