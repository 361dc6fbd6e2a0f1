// Package predictive holds sandgate's predictive reference models: small
// models trained by sandgate itself at server start (well under 2 s),
// deterministic from fixed seeds, with variants a release should treat
// differently. They are served over Open Inference Protocol v2 by
// `sandgate-refmodel --kind credit|credit-limit|imaging --variant X`
// (NewEndpoint + NewHandler); the model name in /v2/models/{name} is the
// kind and the variant is its only version.
//
// # credit (binary classifier)
//
// Inputs (one OIP input per column, shape [n, 1], MLServer pandas-codec
// layout; extra inputs are ignored): the credit-applicant columns
// age INT64, marital_status BYTES, education BYTES, annual_income FP64,
// employment_years INT64, credit_score INT64, debt_to_income FP64,
// open_credit_lines INT64, loan_amount FP64, loan_term_years INT64,
// home_owner BOOL (FairFeatures), plus sex BYTES, race BYTES,
// foreign_worker BOOL for the biased variant (AllFeatures). Output
// "probabilities" FP64 [n, 2] = [p(deny), p(approve)]; class 1 (approve)
// is the favourable outcome. Labels: HistoricalApprovals, past lending
// decisions = a creditworthiness score plus seeded noise > 0.
//
//   - fair: logistic regression on FairFeatures and unbiased labels,
//     trained on CreditTrainingSet (seed 7001, rows 0..2999, no twins).
//     No protected input and no strong proxy: disparate impact ≈ 0.97
//     (sex) and 1.10 (race black/white), counterfactual flip rate 0.
//   - biased: logistic regression on AllFeatures and labels with penalties
//     against race = black, sex = female and foreign workers, same rows:
//     disparate impact ≈ 0.27 (race), 0.40 (sex); twins flip often.
//   - overfit: the Kernel recipe (narrow RBF vote, OverfitOptions) on
//     OverfitMembers (seed 7002, rows 0..399, no twins): member loss
//     ≈ 0.015 vs ≈ 0.65 on OverfitNonMembers (rows 400..799).
//
// Train(rows, labels, Options) is the reusable recipe (shadow models for
// LiRA); Classifier is an interface and CreditEndpoint serves any
// implementation (e.g. a DP-SGD logistic regression) as a variant.
//
// # credit-limit (regressor)
//
// Same inputs as credit (fair: FairFeatures; biased: AllFeatures). Output
// "credit_limit" FP64 [n, 1] in currency units. Ridge regression of
// log(limit) on CreditTrainingSet; labels HistoricalLimits (biased cuts
// limits 30% for women, 35% for black applicants): mean female/male limit
// ≈ 0.92 (fair) vs 0.65 (biased).
//
// # imaging (3-class classifier)
//
// Input "image" FP32 [n, 64, 64] (grey level / 255, as datasets.Images
// scans decode with DecodeScan). Output "probabilities" FP64 [n, 3] over
// healthy, benign, critical (datasets label_id order). Softmax regression
// over features of the 16×16 average-pooled scan, trained on
// datasets.Images(7003, 600):
//
//   - brittle: also reads pixel-level sharpness (|Laplacian| order
//     statistics), clean training, tiny L2: accuracy ≈ 0.9 but ≈ 60% of
//     decisions flip under U[−8/255, 8/255] noise.
//   - robust: pooled features only, noise-augmented training: accuracy
//     ≈ 0.68, ≈ 1% flips at the same noise.
package predictive
