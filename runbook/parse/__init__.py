"""Reading a Markdown runbook into the model: blocks, front matter, annotations, tasks, steps, placeholders, durations."""
