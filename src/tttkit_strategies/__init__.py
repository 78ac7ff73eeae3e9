"""Built-in strategy components: finetuning masks, fillers, augmentations, freezing policies,
and every thesis experiment as a named strategy (``ablations``)."""
