// genner/data/sample.hpp: the built-in sample corpora. Deterministic generators of synthetic
// English sentences with gold entities for the three task families, and writers that put
// train/dev/test splits on disk in the real formats, so the default job runs with no downloads:
//
//   flat/           CoNLL-2003 style (word POS chunk NER, BIO tags, -DOCSTART- lines), PER LOC ORG MISC
//   nested/         GENIA style JSON lines (one "abstract" per line), protein DNA RNA cell_type cell_line
//   discontinuous/  CADEC style 3-line format, ADR, with discontinuous entities
//   flat/raw.txt    a few unannotated news sentences, one per line, words separated by spaces
//
// Every name list and template here was written for this project; nothing is copied from a
// real corpus. Output depends only on the seed: the engine is std::mt19937_64 (its sequence is
// fixed by the standard) and every bounded draw is our own, so the files are byte-identical on
// every machine and standard library.
#pragma once

#include <genner/core/error.hpp>
#include <genner/data/conll.hpp>
#include <genner/data/entity.hpp>
#include <genner/io/atomic_file.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace genner::data::sample {

inline constexpr std::uint64_t default_seed = 20240611;

/// A seeded random source whose draws are the same on every platform: std::mt19937_64 plus an
/// unbiased bounded draw of our own (the standard distributions differ between libraries).
class Rng {
 public:
  explicit Rng(std::uint64_t seed) : engine_(seed) {}

  /// Uniform in [0, n); n > 0. Rejection sampling: draws below 2^64 mod n are redrawn.
  std::uint64_t below(std::uint64_t n) {
    GENNER_CHECK(n > 0, "sample::Rng::below: expected a positive bound, found 0.");
    const std::uint64_t threshold = (std::uint64_t{0} - n) % n;
    for (;;) {
      const std::uint64_t r = engine_();
      if (r >= threshold) return r % n;
    }
  }
  /// Uniform in [lo, hi] (inclusive); lo <= hi.
  int between(int lo, int hi) {
    GENNER_CHECK(lo <= hi, "sample::Rng::between: expected lo <= hi, found ", lo, " > ", hi, ".");
    return lo + static_cast<int>(below(static_cast<std::uint64_t>(hi - lo) + 1));
  }
  /// True with probability num/den.
  bool chance(std::uint64_t num, std::uint64_t den) { return below(den) < num; }
  template <typename T, std::size_t N>
  const T& pick(const T (&items)[N]) {
    return items[below(N)];
  }
  template <typename T>
  const T& pick(const std::vector<T>& items) {
    GENNER_CHECK(!items.empty(), "sample::Rng::pick: expected a non-empty list.");
    return items[below(items.size())];
  }

 private:
  std::mt19937_64 engine_;
};

/// SplitMix64 finaliser: derives independent seeds for families and splits from one seed.
[[nodiscard]] inline std::uint64_t mix_seed(std::uint64_t seed, std::uint64_t salt) {
  std::uint64_t z = seed + 0x9E3779B97F4A7C15ULL * (salt + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

/// Sentences per split.
struct SplitSizes {
  std::size_t train = 3000;
  std::size_t dev = 400;
  std::size_t test = 400;
};

struct Options {
  std::uint64_t seed = default_seed;
  SplitSizes sizes{};
};

struct SplitFiles {
  std::filesystem::path train, dev, test;
};

namespace detail {

/// Words with entities whose spans are relative to the phrase; the unit templates build from.
struct Phrase {
  std::vector<std::string> words;
  std::vector<Entity> entities;

  void add_words(std::string_view text) {
    std::size_t i = 0;
    while (i < text.size()) {
      while (i < text.size() && text[i] == ' ') ++i;
      std::size_t j = i;
      while (j < text.size() && text[j] != ' ') ++j;
      if (j > i) words.emplace_back(text.substr(i, j - i));
      i = j;
    }
  }
  void add(const Phrase& p) {
    const int shift = static_cast<int>(words.size());
    words.insert(words.end(), p.words.begin(), p.words.end());
    for (auto e : p.entities) {
      for (auto& f : e.fragments) f = {f.first + shift, f.second + shift};
      entities.push_back(std::move(e));
    }
  }
  /// Appends `text` as one entity of `type`.
  void add_entity(std::string_view text, const std::string& type) {
    const int start = static_cast<int>(words.size());
    add_words(text);
    entities.push_back({type, {{start, static_cast<int>(words.size())}}});
  }
  /// Marks words [from, size()) as one entity of `type`.
  void mark_from(int from, const std::string& type) {
    entities.push_back({type, {{from, static_cast<int>(words.size())}}});
  }
  [[nodiscard]] int size() const { return static_cast<int>(words.size()); }
};

[[nodiscard]] inline Phrase entity_phrase(std::string_view text, const std::string& type) {
  Phrase p;
  p.add_entity(text, type);
  return p;
}

[[nodiscard]] inline std::string upper(std::string s) {
  for (auto& c : s)
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  return s;
}

inline void capitalise_first(Phrase& p) {
  if (!p.words.empty() && !p.words.front().empty()) {
    char& c = p.words.front().front();
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  }
}

/// Sorts entities into Entity order; what the loaders return.
[[nodiscard]] inline Sentence to_sentence(Phrase p) {
  std::sort(p.entities.begin(), p.entities.end());
  return {std::move(p.words), std::move(p.entities)};
}

/// Expands a template: words separated by spaces; `{NAME}` calls `slot(name, rng, out)`;
/// `a|b|c` picks one alternative (underscores stand for spaces; an empty alternative adds
/// nothing); anything else is a literal word.
template <typename Slot>
void expand(Rng& rng, std::string_view tmpl, Phrase& out, Slot&& slot) {
  std::size_t i = 0;
  while (i < tmpl.size()) {
    while (i < tmpl.size() && tmpl[i] == ' ') ++i;
    std::size_t j = i;
    while (j < tmpl.size() && tmpl[j] != ' ') ++j;
    if (j == i) break;
    const std::string_view token = tmpl.substr(i, j - i);
    i = j;
    if (token.size() > 2 && token.front() == '{' && token.back() == '}') {
      slot(token.substr(1, token.size() - 2), rng, out);
    } else if (token.find('|') != std::string_view::npos) {
      std::vector<std::string_view> alternatives;
      std::size_t a = 0;
      for (;;) {
        const auto bar = token.find('|', a);
        alternatives.push_back(token.substr(a, bar == std::string_view::npos ? token.size() - a : bar - a));
        if (bar == std::string_view::npos) break;
        a = bar + 1;
      }
      std::string chosen(alternatives[rng.below(alternatives.size())]);
      std::replace(chosen.begin(), chosen.end(), '_', ' ');
      out.add_words(chosen);
    } else {
      out.words.emplace_back(token);
    }
  }
}

/// Splits `total` sentences into groups of [lo, hi] (the last group may be shorter).
[[nodiscard]] inline std::vector<std::size_t> group_sizes(Rng& rng, std::size_t total, int lo, int hi) {
  std::vector<std::size_t> out;
  while (total > 0) {
    const auto n = std::min(total, static_cast<std::size_t>(rng.between(lo, hi)));
    out.push_back(n);
    total -= n;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Flat news (PER LOC ORG MISC)
// ---------------------------------------------------------------------------------------------
namespace flat {

inline constexpr std::string_view first_names[] = {
    "Angela",  "John",   "Maria",  "Pedro",   "Anna",     "Thomas",   "Fatima",  "Hiroshi", "Olga",   "Kwame",
    "Elena",   "Marco",  "Ingrid", "Rahul",   "Sofia",    "Pierre",   "Hans",    "Aisha",   "Carlos", "Yuki",
    "Michael", "Sarah",  "David",  "Laura",   "Ahmed",    "Ivan",     "Lucia",   "Peter",   "Helen",  "Jorge",
    "Nadia",   "Stefan", "Grace",  "Oleg",    "Priya",    "Samuel",   "Claire",  "Tomas",   "Amara",  "Viktor",
    "Rosa",    "Daniel", "Mei",    "Lars",    "Beatriz",  "Kofi",     "Martina", "George",  "Irina",  "Paulo",
    "Jean",    "Paris",  "Jordan", "Chelsea", "Florence", "Victoria", "Carmen",  "Andrzej", "Emeka",  "Lena"};

inline constexpr std::string_view surnames[] = {
    "Merkel",     "Smith",   "Silva",    "Costa",    "Novak",    "Fischer",  "Tanaka",    "Petrov",       "Mensah",
    "Rossi",      "Larsen",  "Sharma",   "Dubois",   "Schmidt",  "Haddad",   "Garcia",    "Sato",         "Ivanova",
    "Walker",     "Brown",   "Kowalski", "Moreau",   "Jensen",   "Okafor",   "Ferreira",  "Lindqvist",    "Nakamura",
    "Hughes",     "Bauer",   "Romero",   "Mueller",  "Ortega",   "Chen",     "Kim",       "Nguyen",       "Abebe",
    "Horvat",     "Popescu", "Karlsson", "Murphy",   "van Dijk", "de Souza", "al-Hassan", "Jordan",       "Lincoln",
    "Washington", "Ford",    "Lyon",     "Sterling", "Burton",   "Kovacs",   "Andersson", "Papadopoulos", "Yilmaz",
    "Otieno",     "Reyes",   "Morales",  "Wagner",   "Hoffmann", "Evans"};

inline constexpr std::string_view cities[] = {
    "London",       "Paris",        "Berlin",         "Madrid",    "Lisbon",     "Rome",          "Vienna",
    "Warsaw",       "Prague",       "Moscow",         "Tokyo",     "Sydney",     "Chicago",       "Boston",
    "Toronto",      "Nairobi",      "Cairo",          "Lagos",     "Mumbai",     "Jakarta",       "New York",
    "Los Angeles",  "Buenos Aires", "Rio de Janeiro", "Hong Kong", "Tel Aviv",   "San Francisco", "Cape Town",
    "Kuala Lumpur", "Sao Paulo",    "Brussels",       "Geneva",    "Frankfurt",  "Milan",         "Dublin",
    "Oslo",         "Stockholm",    "Helsinki",       "Athens",    "Istanbul",   "Seoul",         "Manila",
    "Bangkok",      "Lima",         "Bogota",         "Santiago",  "Hamburg",    "Munich",        "Leeds",
    "Manchester",   "Liverpool",    "Glasgow",        "Marseille", "Lyon",       "Porto",         "Valencia",
    "Seville",      "Naples",       "Turin",          "Florence",  "Washington", "Lincoln",       "Chelsea"};

inline constexpr std::string_view countries[] = {
    "Germany",     "France",    "Spain",        "Portugal",   "Italy",       "Britain",      "Poland",
    "Russia",      "Japan",     "China",        "India",      "Brazil",      "Argentina",    "Canada",
    "Mexico",      "Kenya",     "Nigeria",      "Egypt",      "Australia",   "South Africa", "El Salvador",
    "New Zealand", "Sri Lanka", "Saudi Arabia", "Costa Rica", "South Korea", "Burkina Faso", "Norway",
    "Sweden",      "Finland",   "Greece",       "Turkey",     "Ireland",     "Chile",        "Peru",
    "Colombia",    "Indonesia", "Thailand",     "Jordan",     "Israel",      "Pakistan",     "Ghana",
    "Hungary",     "Romania"};

inline constexpr std::string_view regions[] = {
    "Europe",      "Asia",    "Africa",      "Latin America", "Middle East", "Balkans", "Gulf",      "Caribbean",
    "Scandinavia", "Pacific", "West Africa", "North Sea",     "Siberia",     "Bavaria", "Catalonia", "Rhine Valley"};

inline constexpr std::string_view nationalities[] = {
    "German",   "French",    "Spanish",    "Portuguese",    "Italian",   "British",   "Polish",   "Russian",
    "Japanese", "Chinese",   "Indian",     "Brazilian",     "Argentine", "Canadian",  "Mexican",  "Kenyan",
    "Nigerian", "Egyptian",  "Australian", "South African", "American",  "Norwegian", "Swedish",  "Finnish",
    "Greek",    "Turkish",   "Irish",      "Chilean",       "Dutch",     "Belgian",   "Swiss",    "Austrian",
    "Israeli",  "Pakistani", "European",   "Asian",         "African",   "Hungarian", "Romanian", "Korean"};

inline constexpr std::string_view events[] = {
    "World Cup",        "Olympic Games",      "Tour de France",        "Davis Cup",  "Ryder Cup",
    "U.S. Open",        "Australian Open",    "European Championship", "Super Bowl", "Nobel Peace Prize",
    "Champions League", "Commonwealth Games", "Winter Olympics",       "Grand Slam", "Africa Cup of Nations",
    "Copa America",     "Asian Games",        "World Series"};

/// Religious and political adjectives (MISC), as in "the Catholic leader".
inline constexpr std::string_view misc_other[] = {"Catholic", "Muslim",     "Christian", "Buddhist", "Marxist",
                                                  "Islamic",  "Protestant", "Hindu",     "Orthodox", "Socialist"};
inline constexpr std::string_view languages[] = {"English", "Arabic",     "Spanish",  "French",  "Swahili",
                                                 "Hindi",   "Portuguese", "Mandarin", "Russian", "German"};

inline constexpr std::string_view companies[] = {
    "Northwind Trading",   "Apex Holdings",     "Meridian Oil",       "Bluewater Shipping",  "Helix Pharma",
    "Sterling Group",      "Orion Airlines",    "Atlas Steel",        "Vantage Electronics", "Pioneer Foods",
    "Granite Insurance",   "Summit Energy",     "Crescent Media",     "Falcon Motors",       "Harbour Bank",
    "Nordic Timber",       "Redwood Capital",   "Silverline Telecom", "Polaris Mining",      "Cobalt Systems",
    "Evergreen Chemicals", "Kestrel Aerospace", "Lumen Software",     "Tidewater Logistics", "Ironbridge Construction"};

inline constexpr std::string_view company_suffixes[] = {"Corp", "Inc", "Ltd", "AG", "SA", "Plc", "Group", "NV"};

inline constexpr std::string_view organisations[] = {"United Nations",
                                                     "European Union",
                                                     "NATO",
                                                     "World Bank",
                                                     "International Monetary Fund",
                                                     "Red Cross",
                                                     "Greenpeace",
                                                     "Interpol",
                                                     "OPEC",
                                                     "Reuters",
                                                     "Supreme Court",
                                                     "Parliament",
                                                     "Federal Reserve",
                                                     "Bundesbank",
                                                     "Democratic Party",
                                                     "Labour Party",
                                                     "Green Party",
                                                     "Social Democrats",
                                                     "World Health Organisation",
                                                     "Amnesty International",
                                                     "UEFA",
                                                     "FIFA",
                                                     "Security Council",
                                                     "African Union",
                                                     "Senate",
                                                     "Congress",
                                                     "Foreign Ministry",
                                                     "Interior Ministry",
                                                     "Central Bank",
                                                     "Stock Exchange"};

inline constexpr std::string_view club_suffixes[] = {"United",    "Rovers", "City",   "Athletic",
                                                     "Wanderers", "FC",     "Albion", "Town"};
inline constexpr std::string_view club_prefixes[] = {"Real", "Sporting", "Dynamo", "Inter", "Olympique"};
inline constexpr std::string_view newspaper_names[] = {"Herald", "Times", "Courier", "Gazette", "Post", "Tribune"};

inline constexpr std::string_view roles[] = {
    "minister", "president",  "spokesman", "spokeswoman",    "chief executive",  "coach",
    "striker",  "analyst",    "economist", "prime minister", "foreign minister", "finance minister",
    "chairman", "director",   "manager",   "senator",        "ambassador",       "police chief",
    "judge",    "goalkeeper", "envoy",     "central banker", "midfielder"};

inline constexpr std::string_view days[] = {"Monday", "Tuesday",  "Wednesday", "Thursday",
                                            "Friday", "Saturday", "Sunday"};
inline constexpr std::string_view months[] = {"January", "February", "March",     "April",   "May",      "June",
                                              "July",    "August",   "September", "October", "November", "December"};
inline constexpr std::string_view currencies[] = {"dollars", "euros",  "pounds", "yen",   "francs",
                                                  "marks",   "crowns", "pesos",  "rupees"};

/// Body sentences. Slots: PER full name, SUR surname alone (PER), CITY, COUNTRY, LOC (any
/// location), REGION, NAT (nationality, MISC), EVENT (MISC), MISC (other MISC), COMP (company),
/// ORG (any organisation), CLUB (sports club, often just a city name), EXCH (exchange), CBANK
/// (central bank), BANK ("Bank of <city>"), PAPER (newspaper), LANG (language, MISC); non-entities NUM
/// SMALL GOALS PCT SCORE DAY MONTH YEAR ROLE CUR AGE TIME.
inline constexpr std::string_view templates[] = {
    "{PER} , the {NAT} {ROLE} , said on {DAY} that talks with the {ORG} would continue .",
    "{COMP} said on {DAY} it had agreed to buy {COMP} for {NUM} million {CUR} .",
    "Shares in {COMP} fell {PCT} percent to {NUM} pence in {CITY} trading .",
    "{SUR} told reporters in {CITY} that the decision was final .",
    "The {NAT} government has rejected the proposal , a spokesman said .",
    "Police in {CITY} arrested {SMALL} people after clashes on {DAY} .",
    "{CLUB} beat {CLUB} {SCORE} in the {EVENT} on {DAY} .",
    "{PER} ( {COUNTRY} ) {TIME}",
    "{CLUB} {GOALS} {CLUB} {GOALS}",
    "{PER} scored twice as {CLUB} won {SCORE} at home .",
    "Mr {SUR} arrived in {COUNTRY} on {DAY} for a three-day visit .",
    "The {ORG} will meet in {CITY} next month to discuss the crisis in {LOC} .",
    "{COUNTRY} and {COUNTRY} signed a trade agreement in {CITY} on {DAY} .",
    "Analysts said the {NAT} economy would grow by {PCT} percent in {YEAR} .",
    "{PER} of {COUNTRY} won the {EVENT} for the second time .",
    "Officials said the fire started late on {DAY} and was put out by morning .",
    "It was not immediately clear how many people were hurt .",
    "Trading was thin ahead of the holiday , dealers said .",
    "{COMP} reported a net profit of {NUM} million {CUR} for the first half .",
    "The {EXCH} index closed {NUM} points higher at {NUM} .",
    "{PER} , who joined {COMP} in {YEAR} , will replace {SUR} as {ROLE} .",
    "Speaking in {CITY} , {SUR} said {COUNTRY} would not bow to pressure .",
    "A {NAT} tourist was killed when a bus overturned near {CITY} , police said .",
    "{ORG} officials are expected to arrive in {CITY} on {DAY} .",
    "Thousands of people marched through central {CITY} on {DAY} to protest against the new law .",
    "The {NAT} {ROLE} met {PER} in {CITY} to discuss security in the {REGION} .",
    "{PER} told the {PAPER} newspaper that he had no plans to resign .",
    "{SUR} , {AGE} , was sentenced to {SMALL} years in prison by a court in {CITY} .",
    "In {MONTH} , {COMP} cut {NUM} jobs at its plant in {CITY} .",
    "{NAT} troops crossed into {COUNTRY} early on {DAY} , witnesses said .",
    "The {EVENT} will be held in {CITY} in {YEAR} .",
    "{CLUB} coach {PER} said his team deserved to win .",
    "Heavy rain caused flooding in parts of {LOC} , forcing {NUM} families from their homes .",
    "{COMP} , based in {CITY} , makes car parts and employs {NUM} people .",
    "The {ORG} urged {COUNTRY} to release the {SMALL} prisoners .",
    "{PER} and {PER} will meet in the final on {DAY} .",
    "Interest rates were left unchanged at {PCT} percent , the {CBANK} said .",
    "Prices rose {PCT} percent in {MONTH} from a year earlier .",
    "{PER} said : \" We are very happy with the result . \"",
    "{COUNTRY} 's {ROLE} {PER} resigned on {DAY} .",
    "Earlier this year the {ORG} warned that {LOC} faced a food shortage .",
    "Fighting broke out again near {CITY} , the capital of {COUNTRY} .",
    "{COMP} shares closed at {NUM} , up {SMALL} cents .",
    "He said he would travel to {CITY} after the {EVENT} .",
    "{SUR} was replaced by {PER} after {SMALL} minutes .",
    "Asked about {SUR} 's comments , the {ROLE} declined to comment .",
    "The {NAT} and {NAT} delegations left the talks without an agreement .",
    "{ORG} spokesman {PER} said the report was wrong .",
    "{BANK} chairman {PER} said profits would rise in {YEAR} .",
    "{SUR} , the {MISC} leader , flew to {CITY} on {DAY} .",
    "Shares were mostly lower on {DAY} as investors waited for the {MONTH} data .",
    "Unemployment fell to {PCT} percent last month , the lowest since {YEAR} .",
    "{CITY} , which hosted the {EVENT} in {YEAR} , has bid again .",
    "Rescue workers were still searching for survivors late on {DAY} .",
    "{PER} , a former {COMP} {ROLE} , is expected to lead the new team .",
    "They will play {CLUB} in the semi-finals on {DAY} .",
    "Newspapers in {COUNTRY} said the deal was worth about {NUM} million {CUR} .",
    "The talks in {CITY} ended without a deal , the {PAPER} reported .",
    "Both sides said they were ready to resume talks .",
    "Last week {SUR} criticised the {ORG} for its handling of the crisis .",
    "The novel , first published in {LANG} in {YEAR} , has sold {NUM} copies .",
    "{PER} , who speaks fluent {LANG} , is tipped to become the next {ROLE} ."};

/// Headlines, written in capitals as wire headlines are.
inline constexpr std::string_view headlines[] = {"SOCCER - {CLUB} BEAT {CLUB} .",
                                                 "TENNIS - {SUR} REACHES {CITY} FINAL .",
                                                 "{COUNTRY} SAYS TALKS WITH {ORG} TO CONTINUE .",
                                                 "{COMP} PROFIT RISES {PCT} PCT .",
                                                 "{NAT} POLICE ARREST {SMALL} AFTER PROTEST .",
                                                 "CRICKET - {COUNTRY} V {COUNTRY} SCOREBOARD .",
                                                 "GOLF - {PER} LEADS {EVENT} .",
                                                 "{SUR} TO VISIT {COUNTRY} NEXT WEEK .",
                                                 "RESULTS OF {NAT} FIRST DIVISION MATCHES .",
                                                 "FLOODS HIT {REGION} .",
                                                 "MARKETS CLOSE LOWER ON RATE FEARS ."};

inline void slot(std::string_view name, Rng& rng, Phrase& out);

inline void person(Rng& rng, Phrase& out) {
  const int start = out.size();
  out.add_words(rng.pick(first_names));
  if (rng.chance(1, 10)) out.words.push_back(std::string(1, static_cast<char>('A' + rng.below(26))) + ".");
  out.add_words(rng.pick(surnames));
  out.mark_from(start, "PER");
}

inline void company(Rng& rng, Phrase& out) {
  const int start = out.size();
  switch (rng.below(6)) {
    case 0:
      out.add_words(rng.pick(surnames));
      out.add_words(rng.pick({std::string_view("Motors"), std::string_view("Industries"), std::string_view("Brothers"),
                              std::string_view("& Sons"), std::string_view("Engineering")}));
      break;
    case 1:
      out.add_words("Bank of");
      out.add_words(rng.pick(cities));
      break;
    case 2:
      out.add_words(rng.pick(cities));
      out.add_words(rng.chance(1, 2) ? "Securities" : "Airport Authority");
      break;
    default:
      out.add_words(rng.pick(companies));
      if (rng.chance(1, 3)) out.add_words(rng.pick(company_suffixes));
      break;
  }
  out.mark_from(start, "ORG");
}

inline void organisation(Rng& rng, Phrase& out) {
  const int start = out.size();
  switch (rng.below(8)) {
    case 0: company(rng, out); return;
    case 1:
      out.add_words("University of");
      out.add_words(rng.pick(cities));
      break;
    case 2:
      out.add_words(rng.pick(cities));
      out.add_words("City Council");
      break;
    case 3:
      out.add_words(rng.pick(nationalities));
      out.add_words(rng.chance(1, 2) ? "Football Association" : "Olympic Committee");
      break;
    default: out.add_words(rng.pick(organisations)); break;
  }
  out.mark_from(start, "ORG");
}

inline void club(Rng& rng, Phrase& out) {
  const int start = out.size();
  const auto city = rng.pick(cities);
  switch (rng.below(5)) {
    case 0:
    case 1: out.add_words(city); break;  // a bare city name that is a club (ORG), not a place
    case 2:
      out.add_words(rng.pick(club_prefixes));
      out.add_words(city);
      break;
    default:
      out.add_words(city);
      out.add_words(rng.pick(club_suffixes));
      break;
  }
  out.mark_from(start, "ORG");
}

inline void location(Rng& rng, Phrase& out) {
  switch (rng.below(10)) {
    case 0: out.add_entity(rng.pick(regions), "LOC"); break;
    case 1:
    case 2:
    case 3:
    case 4: out.add_entity(rng.pick(countries), "LOC"); break;
    default: out.add_entity(rng.pick(cities), "LOC"); break;
  }
}

inline void event(Rng& rng, Phrase& out) {
  const int start = out.size();
  switch (rng.below(6)) {
    case 0:
      out.add_words(rng.pick(nationalities));
      out.add_words(rng.chance(1, 2) ? "Grand Prix" : "Open");
      break;
    case 1:
      out.add_words(rng.pick(cities));
      out.add_words(rng.chance(1, 2) ? "Marathon" : "Film Festival");
      break;
    default: out.add_words(rng.pick(events)); break;
  }
  out.mark_from(start, "MISC");
}

[[nodiscard]] inline std::string number(Rng& rng) {
  switch (rng.below(4)) {
    case 0: return std::to_string(rng.between(1, 99));
    case 1: return std::to_string(rng.between(100, 999));
    case 2: return std::to_string(rng.between(1, 99)) + "," + std::to_string(rng.between(100, 999));
    default: return std::to_string(rng.between(10, 999)) + "." + std::to_string(rng.between(10, 99));
  }
}

inline void slot(std::string_view name, Rng& rng, Phrase& out) {
  if (name == "PER") return person(rng, out);
  if (name == "SUR") return out.add_entity(rng.pick(surnames), "PER");
  if (name == "CITY") return out.add_entity(rng.pick(cities), "LOC");
  if (name == "COUNTRY") return out.add_entity(rng.pick(countries), "LOC");
  if (name == "REGION") return out.add_entity(rng.pick(regions), "LOC");
  if (name == "LOC") return location(rng, out);
  if (name == "NAT") return out.add_entity(rng.pick(nationalities), "MISC");
  if (name == "MISC") return out.add_entity(rng.pick(misc_other), "MISC");
  if (name == "EVENT") return event(rng, out);
  if (name == "COMP") return company(rng, out);
  if (name == "ORG") return organisation(rng, out);
  if (name == "CLUB") return club(rng, out);
  if (name == "EXCH") {
    const int start = out.size();
    out.add_words(rng.pick(cities));
    out.add_words("Stock Exchange");
    return out.mark_from(start, "ORG");
  }
  if (name == "BANK") {  // "Bank of Lisbon": a city inside an organisation name (all ORG)
    const int start = out.size();
    out.add_words("Bank of");
    out.add_words(rng.pick(cities));
    return out.mark_from(start, "ORG");
  }
  if (name == "CBANK") {
    if (rng.chance(1, 3)) return out.add_entity(rng.chance(1, 2) ? "Federal Reserve" : "Bundesbank", "ORG");
    const int start = out.size();
    out.add_words("Bank of");
    out.add_words(rng.pick(countries));
    return out.mark_from(start, "ORG");
  }
  if (name == "PAPER") {
    const int start = out.size();
    out.add_words(rng.chance(1, 3) ? std::string_view("Daily") : rng.pick(cities));
    out.add_words(rng.pick(newspaper_names));
    return out.mark_from(start, "ORG");
  }
  if (name == "NUM") return out.words.push_back(number(rng));
  if (name == "SMALL") return out.words.push_back(std::to_string(rng.between(2, 20)));
  if (name == "AGE") return out.words.push_back(std::to_string(rng.between(18, 80)));
  if (name == "PCT")
    return out.words.push_back(std::to_string(rng.between(0, 12)) +
                               (rng.chance(2, 3) ? "." + std::to_string(rng.between(1, 9)) : ""));
  if (name == "SCORE") {  // winner first
    const int won = rng.between(1, 5);
    return out.words.push_back(std::to_string(won) + "-" + std::to_string(rng.between(0, won - 1)));
  }
  if (name == "GOALS") return out.words.push_back(std::to_string(rng.between(0, 5)));
  if (name == "LANG") return out.add_entity(rng.pick(languages), "MISC");
  if (name == "TIME")
    return out.words.push_back(std::to_string(rng.between(1, 4)) + ":" + std::to_string(rng.between(10, 59)) + "." +
                               std::to_string(rng.between(10, 99)));
  if (name == "DAY") return out.add_words(rng.pick(days));
  if (name == "MONTH") return out.add_words(rng.pick(months));
  if (name == "YEAR") return out.words.push_back(std::to_string(rng.between(1988, 2024)));
  if (name == "ROLE") return out.add_words(rng.pick(roles));
  if (name == "CUR") return out.add_words(rng.pick(currencies));
  fail("sample: unknown flat template slot '{", name, "}'.");
}

[[nodiscard]] inline Sentence sentence(Rng& rng) {
  Phrase p;
  expand(rng, rng.pick(templates), p, slot);
  return to_sentence(std::move(p));
}

[[nodiscard]] inline Sentence headline(Rng& rng) {
  Phrase p;
  expand(rng, rng.pick(headlines), p, slot);
  for (auto& w : p.words) w = upper(std::move(w));
  return to_sentence(std::move(p));
}

/// "LONDON 1996-08-30": a capitalised city and the date.
[[nodiscard]] inline Sentence dateline(Rng& rng) {
  Phrase p;
  p.add_entity(rng.pick(cities), "LOC");
  for (auto& w : p.words) w = upper(std::move(w));
  const auto two = [](int v) { return (v < 10 ? "0" : "") + std::to_string(v); };
  p.words.push_back(std::to_string(rng.between(1995, 2024)) + "-" + two(rng.between(1, 12)) + "-" +
                    two(rng.between(1, 28)));
  return to_sentence(std::move(p));
}

}  // namespace flat

// ---------------------------------------------------------------------------------------------
// Nested biomedical (protein DNA RNA cell_type cell_line)
// ---------------------------------------------------------------------------------------------
namespace nested {

inline constexpr std::string_view proteins[] = {"IL-2",
                                                "IL-4",
                                                "IL-6",
                                                "IL-10",
                                                "NF-kappa B",
                                                "TNF-alpha",
                                                "c-Jun",
                                                "c-Fos",
                                                "STAT3",
                                                "STAT5",
                                                "p50",
                                                "p65",
                                                "GATA-1",
                                                "GATA-3",
                                                "CD28",
                                                "CD3",
                                                "Oct-1",
                                                "Oct-2",
                                                "AP-1",
                                                "interferon gamma",
                                                "glucocorticoid receptor",
                                                "protein kinase C",
                                                "c-Rel",
                                                "I kappa B alpha",
                                                "CD40 ligand",
                                                "Ets-1",
                                                "PU.1",
                                                "CREB",
                                                "NFAT",
                                                "Sp1",
                                                "c-Myc",
                                                "Bcl-2",
                                                "JAK2",
                                                "RelB",
                                                "erythropoietin",
                                                "GM-CSF",
                                                "TGF-beta",
                                                "MHC class II",
                                                "HLA-DR",
                                                "Tax"};

/// Proteins usable before "+" as cell surface markers.
inline constexpr std::string_view markers[] = {"CD4", "CD8", "CD19", "CD34", "CD14", "CD56", "CD45RA"};

inline constexpr std::string_view cell_types[] = {"T cells",           "B cells",
                                                  "monocytes",         "macrophages",
                                                  "T lymphocytes",     "B lymphocytes",
                                                  "neutrophils",       "erythroid cells",
                                                  "thymocytes",        "NK cells",
                                                  "dendritic cells",   "peripheral blood mononuclear cells",
                                                  "endothelial cells", "hematopoietic progenitor cells",
                                                  "eosinophils",       "mast cells",
                                                  "leukocytes",        "T helper cells",
                                                  "myeloid cells",     "granulocytes"};

inline constexpr std::string_view cell_type_modifiers[] = {"human",   "activated", "resting",     "normal human",
                                                           "primary", "mature",    "circulating", "murine"};

inline constexpr std::string_view cell_lines[] = {"Jurkat",  "HeLa",  "U937", "THP-1",     "K562",       "HL-60",
                                                  "Raji",    "COS-7", "EL4",  "MOLT-4",    "CEM",        "HUT 78",
                                                  "Namalwa", "Daudi", "HEL",  "RAW 264.7", "Mono Mac 6", "BJAB"};

inline constexpr std::string_view lineages[] = {
    "T", "B", "monocytic", "erythroleukemia", "myeloid", "promyelocytic", "lymphoblastoid", "megakaryocytic"};

inline constexpr std::string_view dna_heads[] = {"gene",   "promoter",     "enhancer",     "gene promoter",
                                                 "locus",  "cDNA",         "binding site", "5' flanking region",
                                                 "intron", "coding region"};

inline constexpr std::string_view plain_dna[] = {
    "kappa B site", "long terminal repeat", "HIV-1 long terminal repeat", "TATA box", "CpG island",
    "GC box",       "reporter construct",   "upstream regulatory region"};

inline constexpr std::string_view chemicals[] = {
    "cyclosporin A",     "dexamethasone", "phorbol ester",     "PMA",      "ionomycin", "LPS",
    "calcium ionophore", "retinoic acid", "hydrogen peroxide", "forskolin"};

/// Slots: PROT, DNA, RNA, CT (cell type), CL (cell line), CHEM (non-entity chemical).
inline constexpr std::string_view templates[] = {
    "{PROT} binds to the {DNA} in {CL} .",
    "Expression of {RNA} was induced in {CT} by {PROT} .",
    "We show that {PROT} activates transcription of the {DNA} in {CT} .",
    "These results suggest that {PROT} regulates {DNA} activity in {CL} .",
    "Stimulation of {CT} with {PROT} resulted in rapid accumulation of {RNA} .",
    "The {DNA} contains a binding site for {PROT} .",
    "{PROT} and {PROT} were detected in nuclear extracts from {CL} .",
    "Levels of {RNA} were markedly reduced in {CT} from patients with leukemia .",
    "Transient transfection of {CL} showed that the {DNA} is required for induction by {PROT} .",
    "In contrast , {PROT} did not affect {RNA} levels in {CT} .",
    "{PROT} is constitutively expressed in {CL} but not in {CT} .",
    "Gel shift assays revealed that {PROT} interacts with the {DNA} .",
    "The mechanism of this effect remains unclear .",
    "Taken together , these data indicate a novel pathway of gene regulation .",
    "Treatment with {CHEM} inhibited {PROT} activation in {CT} .",
    "Mutation of the {DNA} abolished binding of {PROT} .",
    "{CT} and {CT} differ in their response to {PROT} .",
    "Northern blot analysis showed that {RNA} was expressed in {CT} .",
    "{PROT} induced tyrosine phosphorylation of {PROT} in {CL} .",
    "Nuclear translocation of {PROT} was blocked by {CHEM} .",
    "The {PROT} was purified from {CT} .",
    "Both {RNA} and {RNA} were upregulated following activation of {CT} .",
    "Overexpression of {PROT} in {CL} enhanced reporter activity driven by the {DNA} .",
    "Regulation of {DNA} expression by {PROT} in {CT} .",
    "Deletion analysis identified a {PROT} responsive element within the {DNA} .",
    "{CHEM} treatment of {CL} increased the amount of {RNA} within {SMALL} hours .",
    "Similar results were obtained with {CT} isolated from healthy donors .",
    "{PROT} is required for the differentiation of {CT} .",
    "The half-life of {RNA} was not altered by {CHEM} .",
    "However , the role of {PROT} in {CT} is still poorly understood .",
    "Binding of {PROT} to the {DNA} was abolished by a point mutation ."};

inline Phrase protein_name(Rng& rng) { return entity_phrase(rng.pick(proteins), "protein"); }

inline Phrase protein(Rng& rng) {
  Phrase p;
  switch (rng.below(10)) {
    case 0:  // "IL-2 receptor" (protein) containing "IL-2" (protein)
      p.add(protein_name(rng));
      p.add_words(rng.chance(1, 2) ? "receptor" : "receptor alpha chain");
      p.mark_from(0, "protein");
      break;
    case 1:  // "recombinant human IL-4"
      p.add_words(rng.chance(1, 2) ? "recombinant human" : "soluble");
      p.add(protein_name(rng));
      p.mark_from(0, "protein");
      break;
    case 2: {  // "p50 / p65 heterodimer"
      p.add(protein_name(rng));
      p.words.emplace_back("/");
      p.add(protein_name(rng));
      p.add_words(rng.chance(1, 2) ? "heterodimer" : "complex");
      p.mark_from(0, "protein");
      break;
    }
    case 3:  // "anti- CD3 antibodies": antibody (protein) containing its target (protein)
      p.add_words("anti-");
      p.add(protein_name(rng));
      p.add_words(rng.chance(1, 2) ? "antibodies" : "monoclonal antibody");
      p.mark_from(0, "protein");
      break;
    default: p.add(protein_name(rng)); break;
  }
  return p;
}

inline Phrase dna(Rng& rng) {
  Phrase p;
  switch (rng.below(8)) {
    case 0: p.add_entity(rng.pick(plain_dna), "DNA"); break;
    case 1:  // "human IL-2 gene"
      p.add_words("human");
      p.add(protein_name(rng));
      p.add_words("gene");
      p.mark_from(0, "DNA");
      break;
    case 2: {  // "IL-2 promoter region" containing the DNA "IL-2 promoter" containing "IL-2"
      p.add(protein_name(rng));
      p.add_words("promoter");
      p.mark_from(0, "DNA");
      p.add_words("region");
      p.mark_from(0, "DNA");
      break;
    }
    default:  // "IL-2 gene", "GATA-1 binding site" ...
      p.add(protein_name(rng));
      p.add_words(rng.pick(dna_heads));
      p.mark_from(0, "DNA");
      break;
  }
  return p;
}

inline Phrase rna(Rng& rng) {
  Phrase p;
  switch (rng.below(5)) {
    case 0:  // "steady-state IL-6 mRNA" containing the RNA "IL-6 mRNA"
      p.add_words("steady-state");
      {
        Phrase inner = protein_name(rng);
        inner.add_words("mRNA");
        inner.mark_from(0, "RNA");
        p.add(inner);
      }
      p.mark_from(0, "RNA");
      break;
    case 1:
      p.add(protein_name(rng));
      p.add_words("transcripts");
      p.mark_from(0, "RNA");
      break;
    default:
      p.add(protein_name(rng));
      p.add_words("mRNA");
      p.mark_from(0, "RNA");
      break;
  }
  return p;
}

inline Phrase cell_type_base(Rng& rng) {
  Phrase p;
  if (rng.chance(1, 4)) {  // "CD4 + T cells": a marker (protein) and cell type inside a cell type
    p.add_entity(rng.pick(markers), "protein");
    p.words.emplace_back("+");
    p.add_entity(rng.chance(1, 2) ? "T cells" : "cells", "cell_type");
    p.mark_from(0, "cell_type");
    // "CD4 + cells": the inner "cells" alone is not a cell type
    if (p.words.size() == 3) p.entities.erase(p.entities.begin() + 1);
  } else {
    p.add_entity(rng.pick(cell_types), "cell_type");
  }
  return p;
}

inline Phrase cell_type(Rng& rng) {
  if (rng.chance(1, 2)) return cell_type_base(rng);
  Phrase p;  // "human T cells" (cell type) containing "T cells" (cell type)
  p.add_words(rng.pick(cell_type_modifiers));
  p.add(cell_type_base(rng));
  p.mark_from(0, "cell_type");
  return p;
}

inline Phrase cell_line(Rng& rng) {
  Phrase p;
  switch (rng.below(6)) {
    case 0:  // "Jurkat T cells" (cell line) containing "T cells" (cell type)
      p.add_words(rng.pick(cell_lines));
      p.add_entity("T cells", "cell_type");
      p.mark_from(0, "cell_line");
      break;
    case 1:  // "human monocytic cell line U937" containing "U937"
      p.add_words("human");
      p.add_words(rng.pick(lineages));
      p.add_words("cell line");
      p.add_entity(rng.pick(cell_lines), "cell_line");
      p.mark_from(0, "cell_line");
      break;
    case 2:
      p.add_words(rng.pick(cell_lines));
      p.add_words("cell line");
      p.mark_from(0, "cell_line");
      break;
    default:
      p.add_words(rng.pick(cell_lines));
      p.add_words("cells");
      p.mark_from(0, "cell_line");
      break;
  }
  return p;
}

inline void slot(std::string_view name, Rng& rng, Phrase& out) {
  if (name == "PROT") return out.add(protein(rng));
  if (name == "DNA") return out.add(dna(rng));
  if (name == "RNA") return out.add(rna(rng));
  if (name == "CT") return out.add(cell_type(rng));
  if (name == "CL") return out.add(cell_line(rng));
  if (name == "CHEM") return out.add_words(rng.pick(chemicals));
  if (name == "SMALL") return out.words.push_back(std::to_string(rng.between(2, 48)));
  fail("sample: unknown nested template slot '{", name, "}'.");
}

[[nodiscard]] inline Sentence sentence(Rng& rng) {
  Phrase p;
  expand(rng, rng.pick(templates), p, slot);
  capitalise_first(p);
  return to_sentence(std::move(p));
}

}  // namespace nested

// ---------------------------------------------------------------------------------------------
// Discontinuous adverse drug reactions (ADR)
// ---------------------------------------------------------------------------------------------
namespace disc {

inline constexpr std::string_view symptoms[] = {"headache",
                                                "headaches",
                                                "nausea",
                                                "dizziness",
                                                "fatigue",
                                                "insomnia",
                                                "diarrhea",
                                                "constipation",
                                                "rash",
                                                "itching",
                                                "hair loss",
                                                "weight gain",
                                                "memory loss",
                                                "blurred vision",
                                                "dry mouth",
                                                "heartburn",
                                                "muscle cramps",
                                                "leg cramps",
                                                "night sweats",
                                                "hot flashes",
                                                "mood swings",
                                                "depression",
                                                "anxiety",
                                                "palpitations",
                                                "stomach upset",
                                                "loss of appetite",
                                                "shortness of breath",
                                                "tingling in my fingers",
                                                "numbness in my feet",
                                                "ringing in my ears",
                                                "brain fog",
                                                "vomiting",
                                                "bloating",
                                                "tiredness"};

inline constexpr std::string_view severities[] = {"severe",  "terrible", "mild",     "constant",
                                                  "extreme", "bad",      "horrible", "chronic"};

/// Body parts that modify a symptom noun ("joint pain") and the nouns they modify.
inline constexpr std::string_view body_modifiers[] = {"muscle", "joint", "back",    "neck",  "shoulder", "hip",
                                                      "knee",   "leg",   "stomach", "chest", "arm",      "foot"};
inline constexpr std::string_view body_nouns[] = {"pain", "aches", "cramps", "stiffness", "weakness", "spasms"};
/// Plural body parts ("pain in my knees").
inline constexpr std::string_view body_parts[] = {"knees", "shoulders", "hips",  "ankles", "wrists", "elbows",
                                                  "legs",  "arms",      "hands", "feet",   "calves", "thighs"};
inline constexpr std::string_view sides[] = {"left", "right"};
inline constexpr std::string_view body_singular[] = {"knee",  "shoulder", "hip", "ankle", "wrist",
                                                     "elbow", "leg",      "arm", "hand",  "foot"};
inline constexpr std::string_view body_adjectives[] = {"weak", "stiff", "sore",  "swollen",
                                                       "numb", "achy",  "heavy", "tender"};
inline constexpr std::string_view drugs[] = {"Lipitor",     "Voltaren",  "Arthrotec",  "Zocor",     "Crestor",
                                             "Celebrex",    "Naproxen",  "Diclofenac", "Pennsaid",  "Vioxx",
                                             "Simvastatin", "Ibuprofen", "Mobic",      "Lovastatin"};
inline constexpr std::string_view indications[] = {"arthritis",      "back pain", "high cholesterol", "knee pain",
                                                   "osteoarthritis", "gout",      "joint pain",       "tendonitis"};

inline const std::string adr = "ADR";

inline void contiguous(Rng& rng, Phrase& out) {
  const int start = out.size();
  switch (rng.below(6)) {
    case 0:
      out.add_words(rng.pick(body_modifiers));
      out.add_words(rng.pick(body_nouns));
      break;
    case 1:
      out.add_words("pain in my");
      if (rng.chance(1, 2)) {
        out.add_words(rng.pick(sides));
        out.add_words(rng.pick(body_singular));
      } else {
        out.add_words(rng.pick(body_parts));
      }
      break;
    default:
      if (rng.chance(1, 3)) out.add_words(rng.pick(severities));
      out.add_words(rng.pick(symptoms));
      break;
  }
  out.mark_from(start, adr);
}

/// Constructions that give discontinuous ADRs (and contiguous ones sharing their words).
inline void discontinuous(Rng& rng, Phrase& out) {
  const int base = out.size();
  switch (rng.below(4)) {
    case 0:
    case 1: {  // "muscle and joint pain", "knee , hip and back pain"
      std::vector<std::string_view> parts;
      const int count = rng.chance(1, 4) ? 3 : 2;
      while (static_cast<int>(parts.size()) < count) {
        const auto b = rng.pick(body_modifiers);
        if (std::find(parts.begin(), parts.end(), b) == parts.end()) parts.push_back(b);
      }
      std::vector<int> at;
      for (int k = 0; k < count; ++k) {
        if (k > 0) out.words.emplace_back(k + 1 == count ? "and" : ",");
        at.push_back(out.size());
        out.add_words(parts[static_cast<std::size_t>(k)]);
      }
      const int noun = out.size();
      out.add_words(rng.pick(body_nouns));
      for (int k = 0; k + 1 < count; ++k)
        out.entities.push_back(
            {adr, {{at[static_cast<std::size_t>(k)], at[static_cast<std::size_t>(k)] + 1}, {noun, noun + 1}}});
      out.entities.push_back({adr, {{at.back(), noun + 1}}});
      break;
    }
    case 2: {  // "pain in my knees and shoulders"
      const auto a = rng.pick(body_parts);
      auto b = rng.pick(body_parts);
      while (b == a) b = rng.pick(body_parts);
      out.add_words(rng.chance(1, 2) ? "pain" : "stiffness");
      out.add_words("in my");
      out.add_words(a);
      out.mark_from(base, adr);
      out.words.emplace_back("and");
      out.add_words(b);
      out.entities.push_back({adr, {{base, base + 3}, {base + 5, base + 6}}});
      break;
    }
    default: {  // "pain and stiffness in my neck"
      const auto n1 = rng.chance(1, 2) ? std::string_view("pain") : std::string_view("swelling");
      const auto n2 = rng.pick({std::string_view("stiffness"), std::string_view("numbness"),
                                std::string_view("tingling"), std::string_view("weakness")});
      out.add_words(n1);
      out.words.emplace_back("and");
      const int second = out.size();
      out.add_words(n2);
      out.add_words("in my");
      out.add_words(rng.chance(1, 2) ? std::string_view("neck") : rng.pick(body_parts));
      out.entities.push_back({adr, {{base, base + 1}, {second + 1, out.size()}}});
      out.mark_from(second, adr);
      break;
    }
  }
}

/// A clause with a discontinuous ADR: "my legs were so weak" (body part ... adjective).
inline void clause(Rng& rng, Phrase& out) {
  out.words.emplace_back("my");
  const int part = out.size();
  out.add_words(rng.pick(body_parts));
  out.add_words(rng.pick({std::string_view("were"), std::string_view("felt"), std::string_view("became"),
                          std::string_view("got"), std::string_view("are")}));
  out.add_words(rng.pick(
      {std::string_view("so"), std::string_view("very"), std::string_view("really"), std::string_view("extremely")}));
  const int adj = out.size();
  out.add_words(rng.pick(body_adjectives));
  out.entities.push_back({adr, {{part, part + 1}, {adj, adj + 1}}});
}

inline void slot(std::string_view name, Rng& rng, Phrase& out) {
  if (name == "ADR") {  // about one in four is a construction with a discontinuous ADR
    if (rng.chance(1, 4)) return discontinuous(rng, out);
    return contiguous(rng, out);
  }
  if (name == "CADR") return contiguous(rng, out);
  if (name == "CLAUSE") return clause(rng, out);
  if (name == "DRUG") return out.add_words(rng.pick(drugs));
  if (name == "FOR") return out.add_words(rng.pick(indications));
  if (name == "DUR") {
    const int n = rng.between(2, 11);
    return out.add_words(std::to_string(n) + " " +
                         std::string(rng.pick({std::string_view("days"), std::string_view("weeks"),
                                               std::string_view("months"), std::string_view("years")})));
  }
  if (name == "DOSE") return out.words.push_back(std::to_string(rng.between(1, 16) * 5));
  if (name == "AGE") return out.words.push_back(std::to_string(rng.between(25, 80)));
  fail("sample: unknown discontinuous template slot '{", name, "}'.");
}

/// Slots: ADR (contiguous or a discontinuous construction), CADR (contiguous only), CLAUSE
/// ("my legs were so weak", a discontinuous ADR), DRUG, FOR
/// (what the drug was taken for: not an ADR), DUR, DOSE, AGE.
inline constexpr std::string_view templates[] = {"I have been taking {DRUG} for {DUR} and have {ADR} .",
                                                 "After {DUR} on {DRUG} I developed {ADR} .",
                                                 "{CADR} started within a week of starting this drug .",
                                                 "The side effects were {ADR} and {CADR} .",
                                                 "Side effects : {CADR} , {ADR} .",
                                                 "I stopped taking {DRUG} because of {ADR} .",
                                                 "Within {DUR} I had {CADR} and {ADR} .",
                                                 "My doctor switched me to {DRUG} .",
                                                 "{DRUG} worked well for my {FOR} .",
                                                 "No side effects so far .",
                                                 "I took it for {FOR} but it gave me {ADR} .",
                                                 "It did lower my cholesterol but the {ADR} made it hard to work .",
                                                 "Now I also suffer from {ADR} .",
                                                 "Still have {ADR} even though I stopped {DUR} ago .",
                                                 "I would not recommend this drug to anyone .",
                                                 "Woke up every night with {ADR} .",
                                                 "I am {AGE} years old and have taken {DRUG} for {DUR} .",
                                                 "{CADR} , {CADR} and {ADR} .",
                                                 "Also noticed {ADR} after a few days .",
                                                 "Was on {DRUG} {DOSE} mg daily for my {FOR} .",
                                                 "It took away my {FOR} but caused {ADR} .",
                                                 "The {ADR} went away when I stopped the medication .",
                                                 "Great relief from {FOR} with no problems at all .",
                                                 "I get {ADR} every time I take it .",
                                                 "Had to quit after {DUR} due to {ADR} and {ADR} .",
                                                 "Some days I can hardly walk because of the {ADR} .",
                                                 "My pharmacist said {CADR} is a common side effect .",
                                                 "I think the {ADR} is from {DRUG} .",
                                                 "Do n't take this if you already have {FOR} .",
                                                 "Since starting {DRUG} {DOSE} mg , {ADR} .",
                                                 "After {DUR} on {DRUG} {CLAUSE} .",
                                                 "Within a week {CLAUSE} and I had {CADR} .",
                                                 "{CLAUSE} and I could barely get out of bed .",
                                                 "Since I started {DRUG} {CLAUSE} ."};

[[nodiscard]] inline Sentence sentence(Rng& rng) {
  Phrase p;
  expand(rng, rng.pick(templates), p, slot);
  capitalise_first(p);
  // The same construction drawn twice can repeat an entity exactly; keep one.
  std::sort(p.entities.begin(), p.entities.end());
  p.entities.erase(std::unique(p.entities.begin(), p.entities.end()), p.entities.end());
  return to_sentence(std::move(p));
}

}  // namespace disc

inline void check_words(const Sentence& s, const char* who) {
  GENNER_CHECK(!s.words.empty(), who, ": expected a non-empty sentence.");
  for (const auto& w : s.words)
    GENNER_CHECK(!w.empty() && w.find_first_of(" \t\r\n") == std::string::npos, who,
                 ": expected words without whitespace, found '", w, "'.");
}

}  // namespace detail

// ---------------------------------------------------------------------------------------------
// Generators
// ---------------------------------------------------------------------------------------------

/// `n` flat-NER sentences grouped into news documents (a capitalised headline, a dateline, then
/// body sentences; some documents are results tables). Total sentences = n.
[[nodiscard]] inline std::vector<std::vector<Sentence>> flat_documents(std::size_t n, std::uint64_t seed) {
  Rng rng(mix_seed(seed, 101));
  std::vector<std::vector<Sentence>> out;
  for (const auto size : detail::group_sizes(rng, n, 3, 16)) {
    std::vector<Sentence> doc;
    if (size >= 4 && rng.chance(2, 3)) doc.push_back(detail::flat::headline(rng));
    if (size >= 3 && rng.chance(3, 4)) doc.push_back(detail::flat::dateline(rng));
    while (doc.size() < size) doc.push_back(detail::flat::sentence(rng));
    out.push_back(std::move(doc));
  }
  return out;
}

/// `n` nested-NER sentences grouped into abstracts of 3..9 sentences.
[[nodiscard]] inline std::vector<std::vector<Sentence>> nested_abstracts(std::size_t n, std::uint64_t seed) {
  Rng rng(mix_seed(seed, 202));
  std::vector<std::vector<Sentence>> out;
  for (const auto size : detail::group_sizes(rng, n, 3, 9)) {
    std::vector<Sentence> abstract;
    while (abstract.size() < size) abstract.push_back(detail::nested::sentence(rng));
    out.push_back(std::move(abstract));
  }
  return out;
}

/// `n` forum-post sentences with ADR entities, some discontinuous.
[[nodiscard]] inline std::vector<Sentence> discontinuous_sentences(std::size_t n, std::uint64_t seed) {
  Rng rng(mix_seed(seed, 303));
  std::vector<Sentence> out;
  out.reserve(n);
  while (out.size() < n) out.push_back(detail::disc::sentence(rng));
  return out;
}

/// `n` unannotated news sentences (words joined by single spaces), for a predict demo.
[[nodiscard]] inline std::vector<std::string> raw_sentences(std::size_t n, std::uint64_t seed) {
  Rng rng(mix_seed(seed, 404));
  std::vector<std::string> out;
  while (out.size() < n) {
    const auto s = detail::flat::sentence(rng);
    if (s.words.size() < 6) continue;  // skip results-table lines
    out.push_back(join_words(s.words));
  }
  return out;
}

/// Concatenates groups (documents, abstracts) into one sentence list, as the loaders return it.
[[nodiscard]] inline std::vector<Sentence> flatten(const std::vector<std::vector<Sentence>>& groups) {
  std::vector<Sentence> out;
  for (const auto& g : groups) out.insert(out.end(), g.begin(), g.end());
  return out;
}

// ---------------------------------------------------------------------------------------------
// Formats
// ---------------------------------------------------------------------------------------------

/// CoNLL-2003 columns `word POS chunk NER` (POS and chunk are the placeholder -X-), BIO tags,
/// a `-DOCSTART- -X- -X- O` line and a blank line before each document, a blank line after
/// each sentence. Throws if entities overlap (BIO cannot hold them).
[[nodiscard]] inline std::string conll_text(const std::vector<std::vector<Sentence>>& documents) {
  std::ostringstream out;
  for (const auto& doc : documents) {
    out << "-DOCSTART- -X- -X- O\n\n";
    for (const auto& s : doc) {
      detail::check_words(s, "sample::conll_text");
      std::size_t skipped = 0;
      const auto tags = to_bio(s.words.size(), s.entities, &skipped);
      GENNER_CHECK(skipped == 0, "sample::conll_text: expected non-overlapping entities, found ", skipped,
                   " overlapping in a sentence of ", s.words.size(), " words.");
      for (const auto& e : s.entities)
        GENNER_CHECK(!e.discontinuous(), "sample::conll_text: expected contiguous entities, found ", e, ".");
      for (std::size_t i = 0; i < s.words.size(); ++i) out << s.words[i] << " -X- -X- " << tags[i] << '\n';
      out << '\n';
    }
  }
  return out.str();
}

/// GENIA JSON lines: one object per group, {"ners": [[[start, end_inclusive, type], ...] ...],
/// "sentences": [[tokens] ...]}.
[[nodiscard]] inline std::string nested_jsonl_text(const std::vector<std::vector<Sentence>>& abstracts) {
  std::string out;
  for (const auto& abstract : abstracts) {
    nlohmann::json ners = nlohmann::json::array(), sentences = nlohmann::json::array();
    for (const auto& s : abstract) {
      detail::check_words(s, "sample::nested_jsonl_text");
      nlohmann::json list = nlohmann::json::array();
      for (const auto& e : s.entities) {
        GENNER_CHECK(!e.discontinuous(), "sample::nested_jsonl_text: expected contiguous entities, found ", e, ".");
        list.push_back(nlohmann::json::array({e.start(), e.end() - 1, e.type}));
      }
      ners.push_back(std::move(list));
      sentences.push_back(s.words);
    }
    out += nlohmann::json{{"ners", std::move(ners)}, {"sentences", std::move(sentences)}}.dump();
    out += '\n';
  }
  return out;
}

/// The 3-line format: tokens; `s,e[,s,e...] TYPE` items (inclusive indices) joined by `|`
/// (empty when none); a blank line.
[[nodiscard]] inline std::string discontinuous_text(const std::vector<Sentence>& sentences) {
  std::ostringstream out;
  for (const auto& s : sentences) {
    detail::check_words(s, "sample::discontinuous_text");
    for (std::size_t i = 0; i < s.words.size(); ++i) out << (i ? " " : "") << s.words[i];
    out << '\n';
    for (std::size_t k = 0; k < s.entities.size(); ++k) {
      const auto& e = s.entities[k];
      GENNER_CHECK(!e.fragments.empty() && e.type.find_first_of(" |") == std::string::npos,
                   "sample::discontinuous_text: expected an entity with fragments and a type without spaces, found ", e,
                   ".");
      out << (k ? "|" : "");
      for (std::size_t f = 0; f < e.fragments.size(); ++f)
        out << (f ? "," : "") << e.fragments[f].first << ',' << e.fragments[f].second - 1;
      out << ' ' << e.type;
    }
    out << "\n\n";
  }
  return out.str();
}

// ---------------------------------------------------------------------------------------------
// Writers (atomic: a crash never leaves a half-written split)
// ---------------------------------------------------------------------------------------------

namespace detail {
inline constexpr std::uint64_t split_salt[3] = {1, 2, 3};  // train, dev, test
inline constexpr const char* split_names[3] = {"train", "dev", "test"};
[[nodiscard]] inline std::size_t split_size(const SplitSizes& s, int k) {
  return k == 0 ? s.train : k == 1 ? s.dev : s.test;
}
template <typename Make>
SplitFiles write_splits(const std::filesystem::path& dir, const char* extension, const Options& options, Make&& make) {
  std::filesystem::create_directories(dir);
  SplitFiles files;
  std::filesystem::path* paths[3] = {&files.train, &files.dev, &files.test};
  for (int k = 0; k < 3; ++k) {
    const auto size = split_size(options.sizes, k);
    GENNER_CHECK(size > 0, "sample: expected a positive size for the ", split_names[k], " split, found 0.");
    *paths[k] = dir / (std::string(split_names[k]) + extension);
    io::write_text_atomically(*paths[k], make(size, mix_seed(options.seed, split_salt[k])));
  }
  return files;
}
}  // namespace detail

/// Writes `dir/train.txt dev.txt test.txt` (CoNLL-2003 style).
inline SplitFiles write_flat(const std::filesystem::path& dir, const Options& options = {}) {
  return detail::write_splits(dir, ".txt", options,
                              [](std::size_t n, std::uint64_t seed) { return conll_text(flat_documents(n, seed)); });
}

/// Writes `dir/train.jsonl dev.jsonl test.jsonl` (GENIA style JSON lines).
inline SplitFiles write_nested(const std::filesystem::path& dir, const Options& options = {}) {
  return detail::write_splits(dir, ".jsonl", options, [](std::size_t n, std::uint64_t seed) {
    return nested_jsonl_text(nested_abstracts(n, seed));
  });
}

/// Writes `dir/train.txt dev.txt test.txt` (CADEC style 3-line format).
inline SplitFiles write_discontinuous(const std::filesystem::path& dir, const Options& options = {}) {
  return detail::write_splits(dir, ".txt", options, [](std::size_t n, std::uint64_t seed) {
    return discontinuous_text(discontinuous_sentences(n, seed));
  });
}

/// Writes `n` raw sentences, one per line, to `file`.
inline void write_raw(const std::filesystem::path& file, std::size_t n, std::uint64_t seed = default_seed) {
  std::string text;
  for (const auto& line : raw_sentences(n, seed)) text += line + "\n";
  io::write_text_atomically(file, text);
}

struct CorpusOptions {
  std::uint64_t seed = default_seed;
  SplitSizes flat{};
  SplitSizes nested{};
  SplitSizes discontinuous{};
  std::size_t raw_lines = 20;
};

struct CorpusFiles {
  SplitFiles flat, nested, discontinuous;
  std::filesystem::path raw;  ///< flat/raw.txt
};

/// Writes the whole sample corpus: `dir/flat/`, `dir/nested/`, `dir/discontinuous/` and
/// `dir/flat/raw.txt`. The same options give byte-identical files.
inline CorpusFiles write_corpus(const std::filesystem::path& dir, const CorpusOptions& options = {}) {
  CorpusFiles files;
  files.flat = write_flat(dir / "flat", {options.seed, options.flat});
  files.nested = write_nested(dir / "nested", {options.seed, options.nested});
  files.discontinuous = write_discontinuous(dir / "discontinuous", {options.seed, options.discontinuous});
  files.raw = dir / "flat" / "raw.txt";
  write_raw(files.raw, options.raw_lines, options.seed);
  return files;
}

}  // namespace genner::data::sample
