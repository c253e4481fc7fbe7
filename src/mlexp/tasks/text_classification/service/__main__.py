"""`python -m mlexp.tasks.text_classification.service <command>`: the review CLI (mlexp review ...)."""

import sys

from mlexp.tasks.text_classification.service.review_command import main

sys.exit(main())
