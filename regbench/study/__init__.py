"""The study: grouping runs by configuration, statistics, comparisons."""
