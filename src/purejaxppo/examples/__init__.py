"""Small envs written as a user would write their own: `python -m purejaxppo.run --env
purejaxppo.examples.corridor:make` trains one (docs/your-env.md)."""
