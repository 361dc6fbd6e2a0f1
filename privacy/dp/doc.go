// Package dp trains differentially private binary logistic regression with
// DP-SGD (Abadi et al. 2016) and accounts its privacy with Rényi DP for
// the subsampled Gaussian mechanism (Mironov, Talwar, Zhang 2019).
//
// It exists so the privacy audit has a model whose theoretical ε is known:
// an empirical ε lower bound (package privacy) above the accountant's ε
// means the implementation or the accounting is broken.
//
// Accounting conventions, reported in every Report:
//
//   - Neighbouring datasets differ by adding or removing one example, and
//     the accountant assumes Poisson subsampling at rate q (each example in
//     each batch independently). Fixed-size batches are accounted the same
//     way, as TensorFlow Privacy and Opacus do; that is an approximation,
//     named in Report.Accounting.
//   - RDP orders are the integers 2..256 (DefaultOrders); the RDP of one
//     step at integer α is the exact binomial expansion of MTZ 2019 §3.3.
//   - RDP → (ε, δ) uses the improved conversion of Balle et al. 2020
//     (Thm 21) by default, or the standard one of Mironov 2017 (Prop. 3)
//     to compare with older published figures.
package dp
