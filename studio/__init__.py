"""Studio tools: authoring commands that read a finished bundle and write reports about it.

They sit above both the runtime and training (models <- training <- studio, installation <- studio): they
render through the piece's one render path and read training's runs and metrics. The runtime never imports
them.

    python -m studio.inspection   memorisation check: samples beside their nearest collection images
    python -m studio.model_card   MODEL_CARD.md and the sample grid, figures read from the files
"""
