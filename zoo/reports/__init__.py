"""What a person sees of a run: its pictures (``figures``), the few lines a command ends
with (``summary``) and progress on a terminal (``progress``).

Nothing here imports TensorFlow; matplotlib is imported when a picture is drawn.
"""
