"""GitHub: the few REST calls the suite makes (api), and the pull requests' plan comment (pr_comment,
`python -m plugins.github.pr_comment`). The deploy's commit comment is plugins/deploy/finish/notifier.py."""
