"""The cell-value vocabulary of :mod:`.lexicon`: per category, words that say what a value is (``katholisch``,
``divorced``, ``Hypertension``, ``Bavaria``) and how a value matches them."""

from __future__ import annotations

# category -> (how a value matches, terms). "whole": the whole normalized value is a term; "token": one of its words
# is; "prefix": one of its words starts with a term (drug and disease stems). Normalized: folded, lower case.
VALUE_KEYWORDS: dict[str, tuple[str, str]] = {
    "sex": (
        "whole",
        """
        m f w h x male female man woman men women masculine feminine nonbinary non-binary diverse divers
        mannlich weiblich homme femme masculin feminin hombre mujer varon masculino femenino maschio femmina uomo
        donna feminino vrouw mannelijk vrouwelijk
        """,
    ),
    "yes_no": (
        "whole",
        """
        yes no y n true false t f 1 0 ja nein j wahr falsch oui non o vrai faux si sim nao nee verdadero falso vero
        """,
    ),
    "marital": (
        "token",
        """
        single married divorced widowed widow widower separated unmarried spouse partnership cohabiting
        ledig verheiratet geschieden verwitwet getrennt lebenspartnerschaft
        celibataire marie mariee divorce divorcee veuf veuve separe pacse pacsee concubinage
        soltero soltera casado casada divorciado divorciada viudo viuda separado separada
        celibe nubile coniugato coniugata sposato sposata divorziato divorziata vedovo vedova separato separata
        solteiro solteira viuvo viuva uniao estavel
        ongehuwd gehuwd getrouwd gescheiden weduwe weduwnaar samenwonend
        """,
    ),
    "religion": (
        "token",
        """
        christian christianity catholic protestant evangelical lutheran anglican orthodox baptist methodist
        pentecostal mormon jehovah muslim islam islamic jewish judaism jew hindu hinduism sikh buddhist buddhism
        atheist agnostic shinto taoist religion
        katholisch katholik evangelisch protestantisch lutherisch muslimisch islamisch judisch buddhistisch
        konfessionslos atheistisch
        catholique protestante evangelique musulman musulmane juif juive bouddhiste athee agnostique
        catolica catolico protestantes evangelica evangelico musulmana musulmano judio judia budista ateo atea
        espirita umbanda candomble
        cattolica cattolico ortodossa ortodosso ebreo ebraica ebraico buddista
        judeu judaica ateu
        katholiek rooms protestants hervormd gereformeerd moslim islamitisch joods jood boeddhist boeddhistisch
        atheist
        """,
    ),
    "ethnicity": (
        "token",
        """
        white black asian hispanic latino latina caucasian african afroamerican arab indigenous aboriginal
        islander mixed multiracial biracial
        weiss schwarz asiatisch
        blanc blanche noir noire asiatique metis metisse
        blanco blanca negro negra asiatico asiatica indigena mestizo mestiza
        bianco bianca nero nera
        branca branco preta preto parda pardo amarela amarelo
        blank zwart aziatisch
        """,
    ),
    "education": (
        "token",
        """
        bachelor bachelors master masters phd doctorate doctoral diploma graduate undergraduate postgraduate college
        university highschool hs grad secondary primary elementary preschool kindergarten vocational apprenticeship
        gcse alevel associate
        abitur realschule hauptschule gymnasium ausbildung lehre hochschule fachhochschule promotion
        baccalaureat bac licence doctorat brevet
        bachillerato licenciatura grado maestria doctorado primaria secundaria
        laurea dottorato maturita
        fundamental medio superior mestrado doutorado graduacao posgraduacao tecnico
        mbo hbo vwo havo vmbo
        """,
    ),
    "health": (
        "prefix",
        """
        diabet hypert hipert ipert asthm asma astma cancer cancro krebs kanker carcino tumor tumour leukem depress
        epilep epiless arthri arthro artri artro insuffi insufi scompenso hartfalen copd bpco epoc hiv aids hepati
        migrai emicrania stroke schlaganfall ictus beroerte alzheim parkinson dementi demenz demence schizo bipolar
        anxiet angst anxiete ansiedad obesi adiposit coeliac celiac zoliak crohn scleros sklerose allerg grippe
        influenz covid pneumon neumon polmonit osteopor anemi anami hypothyr cardiopat infarct myocard angina
        disorder syndrom infection chronic
        metformin insulin ibuprofen paracetamol acetaminophen aspirin omeprazol pantoprazol esomeprazol
        atorvastatin simvastatin sinvastatin rosuvastatin lisinopril ramipril enalapril losartan losartana
        amlodipin metoprolol bisoprolol levothyrox thyroxin salbutamol prednison prednisolon warfarin amoxicillin
        amoxicilin sertralin fluoxetin citalopram escitalopram diazepam lorazepam morphin tramadol codein
        clopidogrel apixaban rivaroxaban furosemid hydrochlorothiazid gabapentin pregabalin
        """,
    ),
    "status": (
        "token",
        """
        active inactive pending open closed done completed complete cancelled canceled shipped delivered returned
        refunded approved rejected declined failed success successful processing new inprogress progress onhold
        suspended expired paid unpaid draft submitted
        offen erledigt abgeschlossen storniert versendet geliefert aktiv inaktiv bearbeitung genehmigt abgelehnt
        bezahlt
        encours termine annule expedie livre actif inactif valide refuse paye
        pendiente aprobada aprobado rechazada rechazado cancelado cancelada enviado entregado activo inactivo
        revision completado
        lavorazione spedito consegnato annullato reso attivo inattivo approvato respinto completato
        pendente concluido cancelado entregue ativo inativo aprovado recusado
        afgehandeld behandeling geannuleerd verzonden geleverd actief inactief goedgekeurd afgewezen betaald
        """,
    ),
    "country": (
        "whole",
        """
        afghanistan albania algeria andorra angola argentina armenia australia austria azerbaijan bahamas bahrain
        bangladesh barbados belarus belgium belize benin bhutan bolivia bosnia botswana brazil brunei bulgaria
        burkinafaso burundi cambodia cameroon canada capeverde chad chile china colombia comoros congo costarica
        croatia cuba cyprus czechia czechrepublic denmark djibouti dominica dominicanrepublic ecuador egypt
        elsalvador england eritrea estonia eswatini ethiopia fiji finland france gabon gambia georgia germany ghana
        greece grenada guatemala guinea guyana haiti honduras hongkong hungary iceland india indonesia iran iraq
        ireland israel italy ivorycoast jamaica japan jordan kazakhstan kenya kiribati korea southkorea northkorea
        kosovo kuwait kyrgyzstan laos latvia lebanon lesotho liberia libya liechtenstein lithuania luxembourg
        madagascar malawi malaysia maldives mali malta mauritania mauritius mexico moldova monaco mongolia
        montenegro morocco mozambique myanmar namibia nepal netherlands holland newzealand nicaragua niger nigeria
        northmacedonia norway oman pakistan palestine panama paraguay peru philippines poland portugal puertorico
        qatar romania russia rwanda samoa sanmarino saudiarabia scotland senegal serbia seychelles sierraleone
        singapore slovakia slovenia somalia southafrica spain srilanka sudan suriname sweden switzerland syria
        taiwan tajikistan tanzania thailand togo tonga trinidad tunisia turkey turkiye turkmenistan uganda ukraine
        unitedarabemirates uae unitedkingdom uk greatbritain unitedstates usa us uruguay uzbekistan vanuatu
        venezuela vietnam wales yemen yugoslavia zambia zimbabwe
        deutschland osterreich schweiz frankreich spanien italien niederlande belgien polen tschechien ungarn
        griechenland turkei russland vereinigtestaaten vereinigteskonigreich grossbritannien china japan indien
        brasilien mexiko kanada australien schweden norwegen danemark finnland irland agypten marokko
        allemagne autriche suisse espagne italie paysbas belgique pologne grece turquie russie etatsunis
        royaumeuni chine japon inde bresil mexique suede norvege danemark finlande irlande egypte maroc algerie
        tunisie
        alemania suiza francia espana italia paisesbajos belgica polonia grecia turquia rusia estadosunidos
        reinounido japon brasil mexico canada suecia noruega dinamarca finlandia irlanda egipto marruecos
        germania svizzera francia spagna paesibassi polonia grecia russia statiuniti regnounito cina giappone
        brasile messico svezia norvegia danimarca irlanda egitto marocco
        alemanha suica franca espanha italia holanda paisesbaixos belgica polonia grecia turquia russia
        estadosunidos reinounido japao brasil mexico suecia noruega dinamarca finlandia irlanda egito
        duitsland oostenrijk zwitserland frankrijk spanje italie nederland belgie polen griekenland turkije
        rusland verenigdestaten verenigdkoninkrijk japan brazilie mexico zweden noorwegen denemarken finland
        ierland egypte marokko
        """,
    ),
    "region": (
        "whole",
        """
        alabama alaska arizona arkansas california colorado connecticut delaware florida georgia hawaii idaho
        illinois indiana iowa kansas kentucky louisiana maine maryland massachusetts michigan minnesota mississippi
        missouri montana nebraska nevada newhampshire newjersey newmexico newyork northcarolina northdakota ohio
        oklahoma oregon pennsylvania rhodeisland southcarolina southdakota tennessee texas utah vermont virginia
        washington westvirginia wisconsin wyoming districtofcolumbia
        al ak az ar ca co ct de fl ga hi id il ia ks ky la me md ma mi mn ms mo mt ne nv nh nj nm ny nc nd oh ok or
        pa ri sc sd tn tx ut vt va wa wv wi wy dc
        ac ap am ba ce df es go mg ms mt pb pe pi pr rj rn ro rr rs se sp to
        alberta britishcolumbia manitoba newbrunswick newfoundlandandlabrador novascotia ontario
        princeedwardisland quebec saskatchewan yukon nunavut northwestterritories
        newsouthwales queensland southaustralia tasmania victoria westernaustralia northernterritory
        australiancapitalterritory
        badenwurttemberg bayern bavaria berlin brandenburg bremen hamburg hessen hesse mecklenburgvorpommern
        niedersachsen lowersaxony nordrheinwestfalen northrhinewestphalia rheinlandpfalz saarland sachsen saxony
        sachsenanhalt schleswigholstein thuringen thuringia
        burgenland karnten niederosterreich oberosterreich salzburg steiermark tirol vorarlberg wien
        zurich bern luzern uri schwyz obwalden nidwalden glarus zug freiburg fribourg solothurn baselstadt
        basellandschaft schaffhausen appenzell stgallen graubunden aargau thurgau tessin ticino waadt vaud wallis
        valais neuenburg neuchatel genf geneve jura
        auvergnerhonealpes bourgognefranchecomte bretagne centrevaldeloire corse grandest hautsdefrance iledefrance
        normandie nouvelleaquitaine occitanie paysdelaloire provencealpescotedazur alsace aquitaine auvergne
        bassenormandie bourgogne champagneardenne franchecomte hautenormandie languedocroussillon limousin lorraine
        midipyrenees nordpasdecalais picardie poitoucharentes rhonealpes guadeloupe martinique guyane lareunion
        mayotte
        andalucia aragon asturias baleares illesbalears canarias cantabria castillayleon castillalamancha cataluna
        catalunya comunidadvalenciana extremadura galicia larioja madrid murcia navarra paisvasco euskadi ceuta
        melilla
        abruzzo basilicata calabria campania emiliaromagna friuliveneziagiulia lazio liguria lombardia marche
        molise piemonte puglia sardegna sicilia toscana trentinoaltoadige umbria valledaosta veneto
        acre alagoas amapa amazonas bahia ceara distritofederal espiritosanto goias maranhao matogrosso
        matogrossodosul minasgerais para paraiba parana pernambuco piaui riodejaneiro riograndedonorte
        riograndedosul rondonia roraima santacatarina saopaulo sergipe tocantins
        drenthe flevoland friesland fryslan gelderland groningen limburg noordbrabant noordholland overijssel
        utrecht zeeland zuidholland antwerpen oostvlaanderen westvlaanderen vlaamsbrabant henegouwen luik luxemburg
        namen waalsbrabant
        """,
    ),
}
