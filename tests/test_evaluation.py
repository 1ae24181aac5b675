import torch

from src.evaluation import masked_predictions


def test_class_il_ignores_unseen_classes_and_task_il_masks_to_the_task():
    # 6 classes, 2 per task, 2 tasks seen (classes 0..3)
    logits = torch.tensor([
        [0.0, 5.0, 1.0, 2.0, 9.0, 9.0],  # unseen classes 4, 5 highest: class-IL must ignore them -> 1
        [3.0, 0.0, 1.0, 4.0, 0.0, 0.0],  # class-IL -> 3 ; task 1 (classes 2,3) -> 3 ; task 0 -> 0
        [1.0, 2.0, 7.0, 0.0, 0.0, 0.0],
    ])
    cil, til0 = masked_predictions(logits, seen_classes=4, task_classes=range(0, 2))
    assert cil.tolist() == [1, 3, 2]
    assert til0.tolist() == [1, 0, 1]
    _, til1 = masked_predictions(logits, seen_classes=4, task_classes=range(2, 4))
    assert til1.tolist() == [3, 3, 2]
