"""From a model to scores: the one inference loop, official scoring of files, the scoreboard, reports."""
