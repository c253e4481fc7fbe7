"""Amazon SageMaker as a compute target: training jobs, their packaging and the container's entry point.

Nothing here is imported by a local trial: the SDK costs seconds to import, so callers import these modules lazily.
"""
