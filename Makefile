# `make run` and `make test` set everything up on a fresh machine (venv + pinned packages) first.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup run test test-all bench bench-small bench-cifar data clean

$(STAMP): requirements.txt requirements-nodeps.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -r requirements-nodeps.txt
	touch $(STAMP)

setup: $(STAMP)

run: setup
	$(PY) -m src.train trainer.enable_progress_bar=false

test: setup
	$(PY) -m pytest -q -m "not slow"

test-all: setup
	$(PY) -m pytest -q

clean:
	rm -rf logs .pytest_cache

# Real data for benchmarks: the archives in ../shared/data (see its README), extracted into data/ (git-ignored).
SHARED ?= ../shared/data
data:
	mkdir -p data
	@for a in cifar10:cifar10-jpeg mnist:mnist-png; do d=$${a%%:*}; f=$(SHARED)/$${a#*:}.tar.gz; \
		test -d data/$$d && continue; \
		test -f $$f || { echo "make data: $$f not found; pass the folder of the archives: make data SHARED=/path/to/shared/data"; exit 1; }; \
		echo "extracting $$f"; tar -xzf $$f -C data/ || exit 1; done

bench: bench-small bench-cifar

# every replay method with and without DDN (run tags of bench/run.py), online and in the shortened offline protocol
METHOD_ARMS = $(foreach m,er der derpp erace clser,$(m)_hard $(m)_ddn)
MNIST_OFFLINE_METHODS = $(addsuffix _setting-offline_epochs-5,$(METHOD_ARMS))

# minutes on this CPU: digits, the DDN directions, the alpha x beta sweep; then Split MNIST online and
# the short offline protocols (about eleven hours)
bench-small: setup data
	$(PY) bench/run.py digits --seeds 5
	$(PY) bench/run.py ddn_directions --seeds 5
	OMP_NUM_THREADS=1 $(PY) -m src.train -m +sweeps=alpha_beta seed=0,1,2 logger=none trainer.enable_progress_bar=false \
		hydra.sweep.dir=bench/out/sweep_alpha_beta_digits && $(PY) -m src.report bench/out/sweep_alpha_beta_digits
	$(PY) bench/run.py mnist --seeds 3
	$(PY) bench/run.py mnist --only er_hard er_ddn er_hard_extra er_ddn_frozen --first-seed 3 --seeds 7
	$(PY) bench/run.py mnist --only der_hard der_ddn der_hard_extra der_ddn_frozen derpp_hard derpp_ddn erace_hard erace_ddn \
		clser_hard clser_ddn --first-seed 3 --seeds 7
	$(PY) bench/run.py mnist --only erace_ddn --seeds 3 --out mnist_erace_old_to_old --extra ddn.old_to_old=true
	$(PY) bench/run.py mnist_labels --seeds 10 --out mnist
	$(PY) bench/run.py ddn_offline --seeds 5
	$(PY) bench/run.py mnist_offline --seeds 5
	$(PY) bench/run.py mnist_offline --first-seed 5 --seeds 5 --only $(MNIST_OFFLINE_METHODS) \
		er_hard_extra_setting-offline_epochs-5 er_ddn_frozen_setting-offline_epochs-5
	$(PY) bench/run.py mnist_offline_outer_lr --seeds 10 --out mnist_offline
	$(PY) bench/run.py mnist_offline_val --seeds 5 --out mnist_offline
	$(PY) bench/run.py mnist_offline_val --first-seed 5 --seeds 5 --out mnist_offline \
		--only $(addsuffix _ddn_setting-offline_epochs-5_val_source-heldout_buffer,er der derpp erace clser) \
		erace_hard_extra_setting-offline_epochs-5 erace_ddn_frozen_setting-offline_epochs-5
	for b in 50 500; do $(PY) bench/run.py mnist_offline --buffer $$b --seeds 10 --out mnist_offline_buffer$$b \
		--only $(MNIST_OFFLINE_METHODS); done
	for b in 50 500; do $(PY) bench/run.py mnist --buffer $$b --seeds 10 --out mnist_buffer$$b \
		--only $(METHOD_ARMS); done
	$(PY) bench/run.py mnist --buffer 500 --seeds 10 --out mnist_buffer500 --only er_hard_extra er_ddn_frozen
	$(PY) bench/run.py mnist_center --only er_ddn_center_hypergrad-true --seeds 10 --out mnist
	$(PY) bench/run.py mnist_center --seeds 3 --out mnist
	$(PY) bench/run.py mnist_input_norm --seeds 10 --out mnist
	$(PY) bench/run.py mnist_offline_alignment --seeds 10
	$(PY) bench/alignment.py mnist_offline_alignment
	$(PY) bench/cost.py --dataset seq_mnist --steps 20 --repeats 1 --threads 1 --count-ops --methods er der derpp erace clser
	$(PY) bench/run.py digits --only er_ddn derpp_ddn erace_ddn clser_ddn --seeds 3 --out digits_analytic \
		--extra ddn.hypergrad=analytic
	-$(PY) bench/compare_runs.py bench/out/digits bench/out/digits_analytic

# hours on this CPU (20-35 min per run); on a GPU machine prefer `bash bench/gpu.sh OUT_DIR`
bench-cifar: setup data
	$(PY) bench/run.py cifar_core --seeds 1
	$(PY) bench/run.py cifar_online --seeds 3
	$(PY) bench/run.py cifar_online --only er_hard er_ddn --first-seed 3 --seeds 2
	$(PY) bench/run.py cifar_controls --seeds 1
	$(PY) bench/run.py cifar_gaps --seeds 1
	$(PY) bench/run.py cifar_gaps --only derpp_hard_online-0.01_augment-true --first-seed 1 --seeds 1
	$(PY) bench/run.py cifar_ddn_directions --only er_ddn_old_to_old-true er_ddn_label_mix-0.3 --seeds 1
	$(PY) bench/run.py cifar_online --only erace_hard --seeds 1 --out cifar_online_cpu_cosine --extra head=cosine
	$(PY) bench/run.py cifar_online --only erace_hard --seeds 1 --out cifar_erace_pm1 \
		--extra 'dataset.mean=[0.5,0.5,0.5]' 'dataset.std=[0.5,0.5,0.5]'
	test -d data/cifar10_q50 || $(PY) bench/reencode_jpeg.py data/cifar10 data/cifar10_q50 --quality 50
	$(PY) bench/run.py cifar_online --only erace_hard --seeds 1 --out cifar_erace_q50 --extra dataset.root=data/cifar10_q50
	$(PY) bench/run.py cifar_online --only erace_hard --seeds 3 --out cifar_erace_lr001 --extra baseline.lr.online=0.01
	$(PY) bench/run.py cifar_online --only erace_hard erace_ddn --seeds 3 --out cifar_erace_aug --extra setting.augment=true
	$(PY) bench/run.py cifar_online --only erace_hard --first-seed 3 --seeds 2 --out cifar_erace_aug --extra setting.augment=true
	$(PY) bench/paired.py cifar_erace_aug erace_hard class_il,task_il
	$(PY) bench/run.py cifar_online --only erace_hard erace_ddn --seeds 3 --out cifar_erace_aug_lr001 \
		--extra setting.augment=true baseline.lr.online=0.01
	$(PY) bench/run.py cifar_online --only erace_hard --first-seed 3 --seeds 5 --out cifar_erace_aug_lr001 \
		--extra setting.augment=true baseline.lr.online=0.01
	$(PY) bench/run.py cifar_frozen --only erace_ddn_frozen --seeds 8 --out cifar_erace_aug_lr001 \
		--extra setting.augment=true baseline.lr.online=0.01
	$(PY) bench/paired.py cifar_erace_aug_lr001 cifar_erace_aug/erace_hard class_il,task_il
	$(PY) bench/paired.py cifar_erace_aug_lr001 erace_hard class_il,task_il,forgetting
	$(PY) bench/run.py cifar_online --only erace_ddn --seeds 3 --out cifar_erace_aug_lr001_old_to_old-true \
		--extra setting.augment=true baseline.lr.online=0.01 ddn.old_to_old=true
	$(PY) bench/run.py cifar_online --only erace_ddn --seeds 8 --out cifar_erace_aug_lr001_val_source-heldout_buffer \
		--extra setting.augment=true baseline.lr.online=0.01 ddn.val_source=heldout_buffer
	$(PY) bench/paired.py cifar_erace_aug_lr001_old_to_old-true cifar_erace_aug_lr001/erace_hard
	$(PY) bench/paired.py cifar_erace_aug_lr001_val_source-heldout_buffer cifar_erace_aug_lr001/erace_hard class_il,task_il
	$(PY) bench/paired.py cifar_erace_aug_lr001_val_source-heldout_buffer cifar_erace_aug_lr001/erace_ddn_frozen class_il,task_il
	$(PY) bench/run.py cifar_online --only derpp_hard derpp_ddn --seeds 8 --out cifar_derpp_aug_lr001 \
		--extra setting.augment=true baseline.lr.online=0.01
	$(PY) bench/run.py cifar_frozen --only derpp_ddn_frozen --seeds 8 --out cifar_derpp_aug_lr001 \
		--extra setting.augment=true baseline.lr.online=0.01
	$(PY) bench/paired.py cifar_derpp_aug_lr001 derpp_hard class_il,task_il,forgetting
	$(PY) bench/paired.py cifar_derpp_aug_lr001 derpp_ddn_frozen class_il,task_il,forgetting
	$(PY) bench/run.py cifar_online --only clser_hard clser_ddn --seeds 18 --out cifar_clser_aug_lr001 \
		--extra setting.augment=true baseline.lr.online=0.01
	$(PY) bench/run.py cifar_frozen --only clser_ddn_frozen --seeds 10 --out cifar_clser_aug_lr001 \
		--extra setting.augment=true baseline.lr.online=0.01
	$(PY) bench/paired.py cifar_clser_aug_lr001 clser_hard class_il,task_il
	$(PY) bench/paired.py cifar_clser_aug_lr001 clser_hard class_il plastic
	$(PY) bench/paired.py cifar_clser_aug_lr001 clser_hard class_il working
	$(PY) bench/paired.py cifar_clser_aug_lr001 clser_ddn_frozen class_il,task_il
	$(PY) bench/paired.py cifar_clser_aug_lr001 clser_ddn_frozen class_il plastic
	$(PY) bench/paired.py cifar_clser_aug_lr001 clser_ddn_frozen class_il working
	$(PY) bench/run.py cifar_online --only clser_hard --seeds 1 --out cifar_clser_aug --extra setting.augment=true
	$(PY) bench/run.py cifar_online --only clser_hard --seeds 1 --out cifar_clser_lr001 --extra baseline.lr.online=0.01
	$(PY) bench/run.py cifar_online --only clser_hard --seeds 2 --out cifar_clser_aug_lr0003 \
		--extra setting.augment=true baseline.lr.online=0.003
	$(PY) bench/paired.py cifar_clser_aug_lr0003 cifar_clser_aug_lr001/clser_hard
	$(PY) bench/run.py cifar_center --only er_ddn_center_hypergrad-true --seeds 1
	$(PY) bench/run.py cifar_core --only er_hard er_ddn --seeds 5 --buffer 50 --out cifar_buffer50
	$(PY) bench/run.py cifar_core --only er_hard er_ddn --seeds 5 --buffer 500 --out cifar_buffer500
	$(PY) bench/run.py cifar_offline --seeds 3
	$(PY) bench/run.py cifar_core --only er_ddn --seeds 1 --out cifar_input_norm --extra ddn.input_norm=true
	$(PY) bench/run.py cifar_core --only er_ddn --seeds 1 --out cifar_outer_lr --extra ddn.lr=0.0001
	$(PY) bench/run.py cifar_alignment --seeds 5
	$(PY) bench/alignment.py cifar_alignment
	$(PY) bench/run.py cifar_ddn_directions --only er_ddn_val_source-heldout_buffer er_ddn_beta-0.5 --seeds 1
	$(PY) bench/run.py cifar_ddn_directions --only er_ddn_unroll_steps-3 er_ddn_every-5 \
		--seeds 1 --extra diagnostics.align_every=100
	$(PY) bench/run.py cifar_ddn_directions --only er_ddn_unroll_scope-full --seeds 4 --extra diagnostics.align_every=100
	$(PY) bench/run.py cifar_ddn_directions --only er_ddn_alpha-0.3 --seeds 5 --extra diagnostics.align_every=100
	$(PY) bench/run.py cifar_controls --only er_ddn_frozen --seeds 5 --out cifar_controls_alpha-0.3 \
		--extra alpha=0.3 diagnostics.align_every=100
	$(PY) bench/alignment.py cifar_ddn_directions
	$(PY) bench/run.py cifar_online_aug --seeds 3 --only er_hard_augment-true er_ddn_augment-true \
		--extra diagnostics.align_every=100
	$(PY) bench/run.py cifar_online_aug --seeds 3 --only er_ddn_frozen_augment-true --extra diagnostics.align_every=100
	$(PY) bench/alignment.py cifar_online_aug
	$(PY) bench/run.py cifar_online_aug --only er_hard_augment-true --seeds 3 --out cifar_online_aug_separate \
		--extra diagnostics.align_every=100 setting.concat_forward=false
	$(PY) bench/run.py cifar_online_aug --only er_hard_augment-true er_ddn_augment-true er_ddn_frozen_augment-true \
		--seeds 18 --out cifar_online_aug_lr001 --extra diagnostics.align_every=100 baseline.lr.online=0.01
	$(PY) bench/paired.py cifar_online_aug_lr001 er_hard_augment-true class_il,task_il
	$(PY) bench/paired.py cifar_online_aug_lr001 er_ddn_frozen_augment-true
	$(PY) bench/alignment.py cifar_online_aug_lr001
	$(PY) bench/run.py cifar_online_aug --only er_ddn_augment-true --seeds 5 --out cifar_online_aug_lr001_val_source-heldout_buffer \
		--extra baseline.lr.online=0.01 ddn.val_source=heldout_buffer diagnostics.align_every=100
	$(PY) bench/paired.py cifar_online_aug_lr001_val_source-heldout_buffer cifar_online_aug_lr001/er_hard_augment-true class_il,task_il
	$(PY) bench/paired.py cifar_online_aug_lr001_val_source-heldout_buffer cifar_online_aug_lr001/er_ddn_frozen_augment-true
	$(PY) bench/paired.py cifar_online_aug_lr001_val_source-heldout_buffer cifar_online_aug_lr001/er_ddn_augment-true
	$(PY) bench/alignment.py cifar_online_aug_lr001_val_source-heldout_buffer
	$(PY) bench/buffer_labels.py bench/out/cifar_online_aug_lr001/er_ddn_augment-true \
		bench/out/cifar_derpp_aug_lr001/derpp_ddn bench/out/cifar_clser_aug_lr001/clser_ddn \
		bench/out/cifar_erace_aug_lr001_val_source-heldout_buffer/erace_ddn \
		bench/out/cifar_online_aug_lr001_val_source-heldout_buffer/er_ddn_augment-true \
		bench/out/cifar_erace_aug_lr001/erace_ddn bench/out/cifar_erace_aug/erace_ddn
	$(PY) bench/paired.py cifar_erace_aug_lr001 cifar_online_aug_lr001/er_hard_augment-true
	$(PY) bench/buffer_labels.py bench/out/cifar_online_aug_lr001/er_ddn_frozen_augment-true \
		bench/out/cifar_derpp_aug_lr001/derpp_ddn_frozen bench/out/cifar_clser_aug_lr001/clser_ddn_frozen \
		bench/out/cifar_erace_aug_lr001/erace_ddn_frozen
	$(PY) bench/run.py cifar_online_aug --only er_ddn_augment-true --seeds 1 --out cifar_online_aug_lr001_task_ends \
		--extra baseline.lr.online=0.01 diagnostics.align_every=100 checkpoint.keep_task_ends=true
	$(PY) bench/buffer_labels.py --task-ends bench/out/cifar_online_aug_lr001_task_ends/er_ddn_augment-true
	$(PY) bench/run.py cifar_online --only erace_ddn --first-seed 5 --seeds 1 \
		--out cifar_erace_aug_lr001_val_source-heldout_buffer_task_ends --extra setting.augment=true \
		baseline.lr.online=0.01 ddn.val_source=heldout_buffer diagnostics.align_every=100 checkpoint.keep_task_ends=true
	$(PY) bench/buffer_labels.py --task-ends bench/out/cifar_erace_aug_lr001_val_source-heldout_buffer_task_ends/erace_ddn
	$(PY) bench/run.py cifar_online_aug --only er_ddn_augment-true --seeds 8 --out cifar_online_aug_lr001_ddn.lr-1e-4 \
		--extra baseline.lr.online=0.01 diagnostics.align_every=100 ddn.lr=0.0001
	$(PY) bench/paired.py cifar_online_aug_lr001_ddn.lr-1e-4 cifar_online_aug_lr001/er_hard_augment-true class_il,task_il
	$(PY) bench/paired.py cifar_online_aug_lr001_ddn.lr-1e-4 cifar_online_aug_lr001/er_ddn_frozen_augment-true
	$(PY) bench/paired.py cifar_online_aug_lr001_ddn.lr-1e-4 cifar_online_aug_lr001/er_ddn_augment-true class_il,task_il
	$(PY) bench/alignment.py cifar_online_aug_lr001_ddn.lr-1e-4
	$(PY) bench/buffer_labels.py bench/out/cifar_online_aug_lr001_ddn.lr-1e-4/er_ddn_augment-true
	$(PY) bench/run.py cifar_online_aug --only er_ddn_augment-true --seeds 8 --out cifar_online_aug_lr001_ddn.label_mix-0.5 \
		--extra baseline.lr.online=0.01 diagnostics.align_every=100 ddn.label_mix=0.5
	$(PY) bench/paired.py cifar_online_aug_lr001_ddn.label_mix-0.5 cifar_online_aug_lr001/er_hard_augment-true class_il,task_il
	$(PY) bench/paired.py cifar_online_aug_lr001_ddn.label_mix-0.5 cifar_online_aug_lr001/er_ddn_frozen_augment-true
	$(PY) bench/paired.py cifar_online_aug_lr001_ddn.label_mix-0.5 cifar_online_aug_lr001/er_ddn_augment-true class_il,task_il
	$(PY) bench/alignment.py cifar_online_aug_lr001_ddn.label_mix-0.5
	$(PY) bench/buffer_labels.py bench/out/cifar_online_aug_lr001_ddn.label_mix-0.5/er_ddn_augment-true
	$(PY) bench/buffer_labels.py --network-part bench/out/cifar_online_aug_lr001_ddn.label_mix-0.5/er_ddn_augment-true
	$(PY) bench/run.py cifar_online_aug --only er_ddn_augment-true --seeds 8 --out cifar_online_aug_lr001_ddn.own_task-true \
		--extra baseline.lr.online=0.01 diagnostics.align_every=100 ddn.own_task=true
	$(PY) bench/paired.py cifar_online_aug_lr001_ddn.own_task-true cifar_online_aug_lr001/er_hard_augment-true class_il,task_il
	$(PY) bench/paired.py cifar_online_aug_lr001_ddn.own_task-true cifar_online_aug_lr001/er_ddn_frozen_augment-true
	$(PY) bench/paired.py cifar_online_aug_lr001_ddn.own_task-true cifar_online_aug_lr001/er_ddn_augment-true class_il,task_il
	$(PY) bench/alignment.py cifar_online_aug_lr001_ddn.own_task-true
	$(PY) bench/buffer_labels.py bench/out/cifar_online_aug_lr001_ddn.own_task-true/er_ddn_augment-true
	$(PY) bench/run.py cifar_online --only erace_ddn --seeds 8 --out cifar_erace_aug_lr001_ddn.own_task-true \
		--extra setting.augment=true baseline.lr.online=0.01 ddn.own_task=true
	$(PY) bench/paired.py cifar_erace_aug_lr001_ddn.own_task-true cifar_erace_aug_lr001/erace_hard class_il,task_il
	$(PY) bench/paired.py cifar_erace_aug_lr001_ddn.own_task-true cifar_erace_aug_lr001/erace_ddn_frozen
	$(PY) bench/paired.py cifar_erace_aug_lr001_ddn.own_task-true cifar_erace_aug_lr001/erace_ddn
	$(PY) bench/buffer_labels.py bench/out/cifar_erace_aug_lr001_ddn.own_task-true/erace_ddn
	$(PY) bench/run.py cifar_online_aug --only er_ddn_augment-true --seeds 3 --out cifar_online_aug_lr001_ddn.class_input-false \
		--extra baseline.lr.online=0.01 diagnostics.align_every=100 ddn.class_input=false
	$(PY) bench/paired.py cifar_online_aug_lr001_ddn.class_input-false cifar_online_aug_lr001/er_hard_augment-true class_il,task_il
	$(PY) bench/paired.py cifar_online_aug_lr001_ddn.class_input-false cifar_online_aug_lr001/er_ddn_frozen_augment-true
	$(PY) bench/paired.py cifar_online_aug_lr001_ddn.class_input-false cifar_online_aug_lr001/er_ddn_augment-true
	$(PY) bench/buffer_labels.py bench/out/cifar_online_aug_lr001_ddn.class_input-false/er_ddn_augment-true
	$(PY) bench/run.py cifar_online_aug --only er_ddn_augment-true --seeds 5 --out cifar_online_aug_lr001_beta-0 \
		--extra baseline.lr.online=0.01 diagnostics.align_every=100 beta=0
	$(PY) bench/paired.py cifar_online_aug_lr001_beta-0 cifar_online_aug_lr001/er_hard_augment-true class_il,task_il
	$(PY) bench/paired.py cifar_online_aug_lr001_beta-0 cifar_online_aug_lr001/er_ddn_augment-true class_il,task_il
	$(PY) bench/alignment.py cifar_online_aug_lr001_beta-0
	$(PY) bench/buffer_labels.py bench/out/cifar_online_aug_lr001_beta-0/er_ddn_augment-true
	$(PY) bench/run.py cifar_online_aug --only er_ddn_augment-true --seeds 4 --out cifar_online_aug_lr001_ddn.unroll_steps-3 \
		--extra baseline.lr.online=0.01 diagnostics.align_every=100 ddn.unroll_steps=3
	$(PY) bench/paired.py cifar_online_aug_lr001_ddn.unroll_steps-3 cifar_online_aug_lr001/er_hard_augment-true class_il,task_il
	$(PY) bench/paired.py cifar_online_aug_lr001_ddn.unroll_steps-3 cifar_online_aug_lr001/er_ddn_augment-true class_il,task_il
	$(PY) bench/alignment.py cifar_online_aug_lr001_ddn.unroll_steps-3
	$(PY) bench/buffer_labels.py bench/out/cifar_online_aug_lr001_ddn.unroll_steps-3/er_ddn_augment-true
	$(PY) bench/run.py cifar_online_aug --only er_ddn_augment-true er_ddn_frozen_augment-true --seeds 10 \
		--out cifar_online_aug_lr001_alpha-2 --extra baseline.lr.online=0.01 diagnostics.align_every=100 alpha=2
	$(PY) bench/paired.py cifar_online_aug_lr001_alpha-2 cifar_online_aug_lr001/er_hard_augment-true class_il,task_il,forgetting
	$(PY) bench/paired.py cifar_online_aug_lr001_alpha-2 cifar_online_aug_lr001/er_ddn_augment-true class_il,task_il
	$(PY) bench/paired.py cifar_online_aug_lr001_alpha-2 cifar_online_aug_lr001/er_ddn_frozen_augment-true class_il,task_il
	$(PY) bench/paired.py cifar_online_aug_lr001_alpha-2 er_ddn_frozen_augment-true class_il,task_il,forgetting
	$(PY) bench/alignment.py cifar_online_aug_lr001_alpha-2
	$(PY) bench/buffer_labels.py bench/out/cifar_online_aug_lr001_alpha-2/er_ddn_augment-true
	$(PY) bench/run.py cifar_online_aug --only er_ddn_augment-true --seeds 10 --out cifar_online_aug_lr001_ddn.boundary_iters-50 \
		--extra baseline.lr.online=0.01 diagnostics.align_every=100 ddn.boundary_iters=50
	$(PY) bench/paired.py cifar_online_aug_lr001_ddn.boundary_iters-50 cifar_online_aug_lr001/er_hard_augment-true class_il,task_il,forgetting
	$(PY) bench/paired.py cifar_online_aug_lr001_ddn.boundary_iters-50 cifar_online_aug_lr001/er_ddn_augment-true class_il,task_il
	$(PY) bench/paired.py cifar_online_aug_lr001_ddn.boundary_iters-50 cifar_online_aug_lr001/er_ddn_frozen_augment-true class_il,task_il,forgetting
	$(PY) bench/alignment.py cifar_online_aug_lr001_ddn.boundary_iters-50
	$(PY) bench/buffer_labels.py bench/out/cifar_online_aug_lr001_ddn.boundary_iters-50/er_ddn_augment-true
	$(PY) bench/run.py cifar_online_aug --only er_ddn_augment-true --seeds 10 --out cifar_online_aug_lr001_ddn.every-5 \
		--extra baseline.lr.online=0.01 diagnostics.align_every=100 ddn.every=5
	$(PY) bench/paired.py cifar_online_aug_lr001_ddn.every-5 cifar_online_aug_lr001/er_hard_augment-true class_il,task_il,forgetting
	$(PY) bench/paired.py cifar_online_aug_lr001_ddn.every-5 cifar_online_aug_lr001/er_ddn_augment-true class_il,task_il,forgetting
	$(PY) bench/paired.py cifar_online_aug_lr001_ddn.every-5 cifar_online_aug_lr001/er_ddn_frozen_augment-true class_il,task_il,forgetting
	$(PY) bench/alignment.py cifar_online_aug_lr001_ddn.every-5
	$(PY) bench/buffer_labels.py bench/out/cifar_online_aug_lr001_ddn.every-5/er_ddn_augment-true
	$(PY) bench/run.py cifar_online_aug --only er_ddn_augment-true er_ddn_frozen_augment-true --seeds 3 \
		--out cifar_online_aug_alpha-0.3 --extra alpha=0.3 diagnostics.align_every=100
	$(PY) bench/paired.py cifar_online_aug_alpha-0.3 cifar_online_aug/er_hard_augment-true
	$(PY) bench/paired.py cifar_online_aug_alpha-0.3 cifar_online_aug_alpha-0.3/er_ddn_frozen_augment-true
	$(PY) bench/alignment.py cifar_online_aug_alpha-0.3
	$(PY) bench/cost.py --steps 100 --repeats 2 --threads 1 --methods er der derpp erace clser
	$(PY) bench/cost.py --steps 20 --repeats 1 --threads 1 --count-ops --methods er der derpp erace clser
	$(PY) bench/op_map.py --variant er
	$(PY) bench/op_map.py --variant "er+ddn (head)"
	$(PY) bench/cost.py --steps 20 --repeats 1 --threads 1 --count-ops --extra ddn.hypergrad=analytic --variants \
		"er+ddn (head)" "der+ddn (head)" "derpp+ddn (head)" "erace+ddn (head)" "clser+ddn (head)"
	$(PY) bench/cost.py --dataset seq_mnist --steps 20 --repeats 1 --threads 1 --count-ops --extra ddn.hypergrad=analytic \
		--variants "er+ddn (head)" "der+ddn (head)" "derpp+ddn (head)" "erace+ddn (head)" "clser+ddn (head)"
	$(PY) bench/op_map.py --variant "er+ddn (head)" --extra ddn.hypergrad=analytic
	for e in 2 3 5; do for h in autograd analytic; do $(PY) bench/cost.py --steps 20 --repeats 1 --threads 1 --count-ops \
		--variants "er+ddn (head)" --extra ddn.every=$$e ddn.hypergrad=$$h || exit 1; done; done
	$(PY) bench/op_map.py --variant "er+ddn (head)" --extra ddn.every=5
# the per-seed figures BENCHMARKS.md records against these runs (a move on another CPU is reported, not failed)
	-$(PY) bench/check_recorded.py
