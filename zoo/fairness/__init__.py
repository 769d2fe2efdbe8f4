"""ASR fairness toolkit: per-utterance error records, cohort discovery (metadata columns and binary partitions,
speaker-embedding k-means, a latitude/longitude tree), gap metrics, ``zoo audit`` reports, and mitigation by
fine-tuning with elastic weight consolidation (``zoo.tasks.regularizers``). Papers: Dheram et al. 2022 (discovery,
WER gap, bottom-cohort share) and Trinh et al. 2022 (geographic regions, EWC)."""
