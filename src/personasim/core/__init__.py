"""The base layer every other package may use: errors, the one table reader and atomic writer,
parts folders, locks, hashing, US states, key columns and the one validity rule. It imports
nothing else of personasim's."""
